using System;
using System.Runtime;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The frame handlers a destination first calls in the switchover compile when a receiver is
/// built, not in the downtime: counted with the runtime's JIT counter on the calling thread.
/// </summary>
[TestClass]
public sealed class ReceiverHandlerRehearsalTests
{
    [TestMethod]
    public async Task AfterAReceiverIsBuilt_TheSwitchoversHandlers_CompileNothingOnTheirFirstCall()
    {
        _ = new MigrationReceiver(hello => new TestTarget(hello));
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        IPageStreamHandler handler = new ReceiverConnection(new MigrationReceiverOptions(), hello => new TestTarget(hello), NullLogger.Instance, sessions: null, destination);

        // Refused without a session, as in the rehearsal; what counts is what the calls compile,
        // so the test's own code is compiled first.
        Action[] calls = [() => handler.OnDeviceState(default), () => handler.OnDigests([]), () => handler.OnComplete(), () => handler.OnCommit()];
        foreach (Action call in calls)
        {
            RuntimeHelpers.PrepareMethod(call.Method.MethodHandle);
        }

        _ = Refused(static () => { });
        long before = JitInfo.GetCompiledMethodCount(currentThread: true);
        int refused = Refused(calls[0]) + Refused(calls[1]) + Refused(calls[2]) + Refused(calls[3]);
        long compiled = JitInfo.GetCompiledMethodCount(currentThread: true) - before;

        Assert.AreEqual(4, refused);
        Assert.IsTrue(JitWarmup.IsPrepared(typeof(BackgroundPopulate)), "the populate threads' Stop runs at Complete");
        Assert.AreEqual(0L, compiled, "methods compiled by the first calls of DeviceState, Digests, Complete and Commit");
        await source.DisposeAsync();
        await destination.DisposeAsync();
    }

    private static int Refused(Action call)
    {
        try
        {
            call();
            return 0;
        }
        catch (MigrationProtocolException)
        {
            return 1;
        }
    }
}
