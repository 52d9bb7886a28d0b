using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.TestSupport;

/// <summary>Drives code that waits on a <see cref="FakeTimeProvider"/> from a test.</summary>
internal static class FakeClock
{
    /// <summary>How long a test waits in real time for code on the fake clock to catch up.</summary>
    private static readonly TimeSpan RealLimit = TimeSpan.FromSeconds(20);

    /// <summary>Advances <paramref name="time"/> by <paramref name="step"/> until <paramref name="work"/> ends, and returns its result.</summary>
    internal static async Task<T> AdvanceUntilDoneAsync<T>(this FakeTimeProvider time, Task<T> work, TimeSpan step)
    {
        DateTime giveUp = DateTime.UtcNow + RealLimit;
        while (!work.IsCompleted && DateTime.UtcNow < giveUp)
        {
            time.Advance(step);
            await Task.WhenAny(work, Task.Delay(2));
        }

        Assert.IsTrue(work.IsCompleted, "the work did not end while the fake clock ran");
        return await work;
    }

    /// <summary>Advances <paramref name="time"/> by <paramref name="step"/> until <paramref name="condition"/> holds.</summary>
    internal static void AdvanceUntil(this FakeTimeProvider time, Func<bool> condition, TimeSpan step, string what)
    {
        DateTime giveUp = DateTime.UtcNow + RealLimit;
        while (!condition() && DateTime.UtcNow < giveUp)
        {
            time.Advance(step);
            Thread.Sleep(1);
        }

        Assert.IsTrue(condition(), $"never happened while the fake clock ran: {what}");
    }

    /// <summary>Waits, in real time, until code running on other threads made <paramref name="condition"/> true.</summary>
    internal static void WaitFor(Func<bool> condition, string what) =>
        Assert.IsTrue(SpinWait.SpinUntil(condition, RealLimit), $"never happened: {what}");
}
