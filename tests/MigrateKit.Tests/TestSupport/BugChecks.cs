using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.TestSupport;

/// <summary>Tells a component's bugs from its refusals of what a peer sent.</summary>
internal static class BugChecks
{
    // Thrown inside MigrateKit, these are its bugs, not its answers to a misbehaving peer.
    private static readonly Type[] Bugs =
    [
        typeof(NullReferenceException), typeof(IndexOutOfRangeException), typeof(ArgumentException),
        typeof(InvalidCastException), typeof(KeyNotFoundException), typeof(OverflowException),
        typeof(DivideByZeroException), typeof(NotImplementedException), typeof(AccessViolationException),
    ];

    /// <summary>Fails if any of <paramref name="thrown"/>, or an exception inside one, is of a bug's type.</summary>
    public static void AssertNoBugs(IEnumerable<Exception?> thrown, string who)
    {
        foreach (Exception ex in thrown.OfType<Exception>().SelectMany(Chain))
        {
            Assert.IsFalse(Bugs.Any(b => b.IsInstanceOfType(ex)), $"{who} failed with {ex}");
        }
    }

    private static IEnumerable<Exception> Chain(Exception ex) =>
        ex is AggregateException all
            ? all.InnerExceptions.SelectMany(Chain).Prepend(ex)
            : ex.InnerException is { } inner ? Chain(inner).Prepend(ex) : [ex];
}
