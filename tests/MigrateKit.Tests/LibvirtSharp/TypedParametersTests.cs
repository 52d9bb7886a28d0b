using System;
using System.Collections.Generic;
using LibvirtSharp;
using LibvirtSharp.Interop;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>Typed-parameter lists built with libvirt's own virTypedParamsAdd* and read back.</summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class TypedParametersTests
{
    [TestInitialize]
    public void RequireLibvirt() => LibvirtRequirement.Require();

    [TestMethod]
    public unsafe void EveryType_RoundTrips_WithItsNameAndType()
    {
        using var parameters = new TypedParameters();
        parameters.AddInt("int", -7);
        parameters.AddUInt("uint", uint.MaxValue);
        parameters.AddLLong("llong", long.MinValue);
        parameters.AddULLong("ullong", ulong.MaxValue);
        parameters.AddDouble("double", 2.5);
        parameters.AddBoolean("true", true);
        parameters.AddBoolean("false", false);
        parameters.AddString("string", "migrate_uri: tcp://10.0.0.2:49152 ✓");
        parameters.AddString("empty", string.Empty);

        Assert.AreEqual(9, parameters.Count);
        Dictionary<string, object> read = TypedParameters.Read(parameters.Pointer, parameters.Count);

        Assert.HasCount(9, read);
        Assert.AreEqual(-7, read["int"]);
        Assert.AreEqual(uint.MaxValue, read["uint"]);
        Assert.AreEqual(long.MinValue, read["llong"]);
        Assert.AreEqual(ulong.MaxValue, read["ullong"]);
        Assert.AreEqual(2.5, read["double"]);
        Assert.AreEqual(true, read["true"]);
        Assert.AreEqual(false, read["false"]);
        Assert.AreEqual("migrate_uri: tcp://10.0.0.2:49152 ✓", read["string"]);
        Assert.AreEqual(string.Empty, read["empty"]);
        Assert.AreEqual(VirTypedParameterType.String, parameters.Pointer[7].Type);
    }

    [TestMethod]
    public unsafe void Empty_IsNull_WithCountZero()
    {
        using var parameters = new TypedParameters();

        Assert.AreEqual(0, parameters.Count);
        Assert.IsTrue(parameters.Pointer is null);
        Assert.IsEmpty(TypedParameters.Read(parameters.Pointer, 0));
    }

    [TestMethod]
    public unsafe void NameOf80Bytes_IsRejectedByLibvirt_AndTheListStaysUsable()
    {
        using var parameters = new TypedParameters();
        parameters.AddInt("first", 1);

        LibvirtException ex = Assert.ThrowsExactly<LibvirtException>(() => parameters.AddInt(new string('n', 80), 2));

        StringAssert.Contains(ex.LibvirtMessage, "too long");
        StringAssert.StartsWith(ex.Operation, "virTypedParamsAdd(");
        parameters.AddInt(new string('m', 79), 3);
        Dictionary<string, object> read = TypedParameters.Read(parameters.Pointer, parameters.Count);
        Assert.HasCount(2, read);
        Assert.AreEqual(3, read[new string('m', 79)]);
    }

    [TestMethod]
    public void ManyParameters_GrowTheListThroughLibvirt()
    {
        using var parameters = new TypedParameters();
        for (int i = 0; i < 1000; i++)
        {
            parameters.AddULLong($"p{i}", (ulong)i * 3);
        }

        unsafe
        {
            Dictionary<string, object> read = TypedParameters.Read(parameters.Pointer, parameters.Count);
            Assert.HasCount(1000, read);
            Assert.AreEqual(999UL * 3, read["p999"]);
        }
    }

    [TestMethod]
    public void Disposed_IsReleasedOnce_AndRefusesFurtherUse()
    {
        var parameters = new TypedParameters();
        parameters.AddString("s", "value");

        parameters.Dispose();
        parameters.Dispose();

        Assert.IsTrue(parameters.IsClosed);
        Assert.ThrowsExactly<ObjectDisposedException>(() => parameters.AddInt("i", 1));
        Assert.ThrowsExactly<ObjectDisposedException>(() => { unsafe { _ = parameters.Pointer; } });
    }

    [TestMethod]
    public unsafe void MigrationParameters_UseLibvirtNamesAndTypes_AndOmitNulls()
    {
        var migration = new DomainMigrationParameters
        {
            MigrationUri = "tcp://10.0.0.2:49152",
            DestinationName = "web01-new",
            DestinationXml = "<domain/>",
            BandwidthMiBps = 1024,
            PostcopyBandwidthMiBps = 256,
            AutoConvergeInitial = 20,
            AutoConvergeIncrement = 10,
            ParallelConnections = 4,
            ListenAddress = "0.0.0.0",
        };

        using TypedParameters parameters = migration.ToTypedParameters();
        Dictionary<string, object> read = TypedParameters.Read(parameters.Pointer, parameters.Count);

        Assert.HasCount(9, read);
        Assert.AreEqual("tcp://10.0.0.2:49152", read["migrate_uri"]);
        Assert.AreEqual("web01-new", read["destination_name"]);
        Assert.AreEqual("<domain/>", read["destination_xml"]);
        Assert.AreEqual(1024UL, read["bandwidth"]);
        Assert.AreEqual(256UL, read["bandwidth.postcopy"]);
        Assert.AreEqual(20, read["auto_converge.initial"]);
        Assert.AreEqual(10, read["auto_converge.increment"]);
        Assert.AreEqual(4, read["parallel.connections"]);
        Assert.AreEqual("0.0.0.0", read["listen_address"]);

        using TypedParameters none = DomainMigrationParameters.Default.ToTypedParameters();
        Assert.AreEqual(0, none.Count);
    }

    [TestMethod]
    public unsafe void CompressionParameters_SendOneEntryPerMethod_WithLibvirtNamesAndTypes()
    {
        var migration = new DomainMigrationParameters
        {
            CompressionMethods = [MigrationCompression.Xbzrle, MigrationCompression.MultiThread],
            XbzrleCacheBytes = 256UL << 20,
            CompressionMtLevel = 1,
            CompressionMtThreads = 2,
            CompressionMtDecompressionThreads = 1,
            CompressionZstdLevel = 3,
        };

        using TypedParameters parameters = migration.ToTypedParameters();
        var methods = new List<string>();
        for (int i = 0; i < parameters.Count; i++)
        {
            Dictionary<string, object> one = TypedParameters.Read(parameters.Pointer + i, 1);
            if (one.TryGetValue("compression", out object? method))
            {
                methods.Add((string)method);
            }
        }

        Dictionary<string, object> read = TypedParameters.Read(parameters.Pointer, parameters.Count);
        Assert.AreEqual(7, parameters.Count);
        CollectionAssert.AreEqual(new[] { "xbzrle", "mt" }, methods);
        Assert.AreEqual(256UL << 20, read["compression.xbzrle.cache"]);
        Assert.AreEqual(1, read["compression.mt.level"]);
        Assert.AreEqual(2, read["compression.mt.threads"]);
        Assert.AreEqual(1, read["compression.mt.dthreads"]);
        Assert.AreEqual(3, read["compression.zstd.level"]);
    }
}
