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
    public async Task APreparedAsyncMethod_CompilesItsBox_OnItsFirstResumptionByACompletingTask_OnlyOnce()
    {
        // The switchover's first wait that a completing task ends (the destination's Ready) compiled
        // the runtime's box around its state machine there, in the downtime; Switchover.RunAsync
        // is resumed once before the pause so that it is compiled by then.
        JitWarmup.Prepare(typeof(Resumed));
        JitWarmup.Prepare(typeof(ResumedTwin));
        var cold = new TaskCompletionSource<int>();
        var coldThen = new TaskCompletionSource<int>();
        Task<int> coldRun = ResumedTwin.AddAsync(cold.Task, coldThen.Task);
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        cold.SetResult(20);
        long firstResumption = JitInfo.GetCompiledMethodCount(currentThread: true) - before;
        before = JitInfo.GetCompiledMethodCount(currentThread: true);
        coldThen.SetResult(1);
        long secondResumption = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        // Resumed once on another thread first, as Switchover.RunAsync is by a timer.
        var warm = new TaskCompletionSource<int>();
        var warmThen = new TaskCompletionSource<int>();
        Task<int> warmRun = Resumed.AddAsync(warm.Task, warmThen.Task);
        await Task.Run(() => warm.SetResult(20));
        before = JitInfo.GetCompiledMethodCount(currentThread: true);
        warmThen.SetResult(1);
        long afterAnEarlierResumption = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Assert.IsGreaterThanOrEqualTo(1L, firstResumption, $"methods compiled when the prepared method was first resumed: {firstResumption}");
        Assert.AreEqual(0L, secondResumption, $"methods compiled when it was resumed again: {secondResumption}");
        Assert.AreEqual(0L, afterAnEarlierResumption, $"methods compiled when its twin, resumed once before, was resumed here: {afterAnEarlierResumption}");
        Assert.AreEqual(21, await coldRun.WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.AreEqual(21, await warmRun.WaitAsync(TimeSpan.FromSeconds(30)));
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

    private static class Resumed
    {
        internal static async Task<int> AddAsync(Task<int> first, Task<int> second) => await first.ConfigureAwait(false) + await second.ConfigureAwait(false);
    }

    private static class ResumedTwin
    {
        internal static async Task<int> AddAsync(Task<int> first, Task<int> second) => await first.ConfigureAwait(false) + await second.ConfigureAwait(false);
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
