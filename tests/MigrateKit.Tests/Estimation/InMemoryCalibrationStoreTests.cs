using System;
using System.Collections.Generic;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;

namespace MigrateKit.Tests.Estimation;

/// <summary>InMemoryCalibrationStore: entries by key, checked like the file store's.</summary>
[TestClass]
public sealed class InMemoryCalibrationStoreTests
{
    private static CalibrationEntry Entry(double value) => new(new Dictionary<string, double> { ["v"] = value }, 1, DateTimeOffset.UnixEpoch);

    [TestMethod]
    public void Save_ReplacesTheEntryOfItsKeyOnly()
    {
        var store = new InMemoryCalibrationStore();
        Assert.IsNull(store.Load("a"));

        store.Save("a", Entry(1));
        store.Save("b", Entry(2));
        store.Save("a", Entry(3));

        Assert.AreEqual(3, store.Load("a")!.Get("v"));
        Assert.AreEqual(2, store.Load("b")!.Get("v"));
    }

    [TestMethod]
    public void Save_RefusesAnInvalidEntry()
    {
        var store = new InMemoryCalibrationStore();
        Assert.ThrowsExactly<ArgumentException>(() => store.Save("a", Entry(double.PositiveInfinity)));
        Assert.ThrowsExactly<ArgumentException>(() => store.Save("a", new CalibrationEntry(new Dictionary<string, double>(), 0, DateTimeOffset.UnixEpoch)));
        Assert.IsNull(store.Load("a"));
    }
}
