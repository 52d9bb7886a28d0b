using System;
using System.Runtime;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Migration;

/// <summary>What <see cref="JitWarmup"/> compiles ahead, counted with the runtime's own JIT counter on the calling thread.</summary>
[TestClass]
public sealed class JitWarmupTests
{
    [TestMethod]
    public async Task APreparedAsyncMethod_CompilesNothing_WhenItFirstReallyWaits()
    {
        JitWarmup.Prepare(typeof(Waiter));
        var gate = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);

        // Starting the method runs it up to its first incomplete await: the builder's
        // instantiations over this state machine (box, AwaitUnsafeOnCompleted) run here.
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<string> waiting = Waiter.WaitTwiceAsync(gate.Task);
        long prepared = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<string> unprepared = Twin.WaitTwiceAsync(gate.Task);
        long cold = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        // At most the runtime's instantiating stub for the shared box code remains.
        Assert.IsLessThanOrEqualTo(1L, prepared, $"methods compiled when the prepared method first waited: {prepared}");
        Assert.IsGreaterThanOrEqualTo(5L, cold, $"methods compiled when its unprepared twin first waited: {cold}");
        gate.SetResult(21);
        Assert.AreEqual("42", await waiting.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.AreEqual("42", await unprepared.WaitAsync(TimeSpan.FromSeconds(30)));
    }

    [TestMethod]
    public void APreparedAsyncMethod_CompilesNothing_WhenItCompletesWithoutWaiting()
    {
        // The builder's Start calls the runtime's AsyncMethodBuilderCore.Start, generic over the
        // same state machine: the switchover's first async calls compiled it in the downtime.
        JitWarmup.Prepare(typeof(Quick));
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<int> done = Quick.AddAsync(20, 1);
        long prepared = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        before = JitInfo.GetCompiledMethodCount(currentThread: true);
        Task<int> twin = QuickTwin.AddAsync(20, 1);
        long cold = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Assert.AreEqual(0L, prepared, $"methods compiled when the prepared method first ran: {prepared}");
        Assert.IsGreaterThanOrEqualTo(2L, cold, $"methods compiled when its unprepared twin first ran: {cold}");
        Assert.AreEqual(21, done.Result);
        Assert.AreEqual(21, twin.Result);
    }

    [TestMethod]
    public void Prepare_RecordsEachTypeOnce()
    {
        JitWarmup.Prepare(typeof(Waiter));
        JitWarmup.Prepare(typeof(Waiter));
        Assert.IsTrue(JitWarmup.IsPrepared(typeof(Waiter)));
        Assert.IsFalse(JitWarmup.IsPrepared(typeof(NeverPrepared)));
    }

    private static class Waiter
    {
        internal static async Task<string> WaitTwiceAsync(Task<int> gate)
        {
            int first = await gate.ConfigureAwait(false);
            await Task.Yield();
            return (first * 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static class Twin
    {
        internal static async Task<string> WaitTwiceAsync(Task<int> gate)
        {
            int first = await gate.ConfigureAwait(false);
            await Task.Yield();
            return (first * 2).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    private static class Quick
    {
        internal static async Task<int> AddAsync(int a, int b)
        {
            await Task.CompletedTask.ConfigureAwait(false);
            return a + b;
        }
    }

    private static class QuickTwin
    {
        internal static async Task<int> AddAsync(int a, int b)
        {
            await Task.CompletedTask.ConfigureAwait(false);
            return a + b;
        }
    }

    private static class NeverPrepared
    {
    }
}
