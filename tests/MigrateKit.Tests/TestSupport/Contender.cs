using System;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.TestSupport;

/// <summary>Races a call against code that holds a lock, for tests of what the lock keeps apart.</summary>
internal static class Contender
{
    /// <summary>
    /// Runs <paramref name="call"/> on a thread of its own and returns once that thread blocks (on
    /// the lock the caller holds) or has finished, so the caller goes on knowing the call is waiting.
    /// </summary>
    internal static Task<T> RunUntilBlocked<T>(Func<T> call)
    {
        var done = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                done.SetResult(call());
            }
            catch (Exception ex)
            {
                done.SetException(ex);
            }
        })
        { IsBackground = true, Name = "contender" };
        thread.Start();
        bool waiting = SpinWait.SpinUntil(() => done.Task.IsCompleted || (thread.ThreadState & ThreadState.WaitSleepJoin) != 0, TimeSpan.FromSeconds(30));
        Assert.IsTrue(waiting, "the contending call neither blocked nor finished within 30 s");
        return done.Task;
    }
}
