using System;
using System.Collections.Generic;
using System.IO;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// One connection served by <see cref="MigrationReceiver.ReceiveAsync(IMigrationConnection, System.Threading.CancellationToken)"/>:
/// the commit step (Complete, Ready, Commit, Ack) and the frames it refuses.
/// </summary>
[TestClass]
public sealed class ReceiverConnectionTests
{
    [TestMethod]
    public async Task ReadyThenCommit_StartsTheTarget_AndTheAckCarriesTheResumeDuration()
    {
        await using Served served = Serve();
        ScriptedSource source = served.Source;
        await source.HelloAndRoundAsync(0, ScriptedSource.Pages);
        await source.SwitchoverAsync();

        ReadyFrame ready = await source.ExpectAsync<ReadyFrame>();
        Assert.IsGreaterThanOrEqualTo(TimeSpan.Zero, ready.Ready.PrepareDuration);
        TestTarget target = served.Targets[0];
        Assert.IsFalse(target.Started, "Ready leaves the VM paused");
        CollectionAssert.AreEqual(ScriptedVm.State, target.RestoredState, "the state is restored before Ready");

        await source.SendAsync(w => w.AppendCommit());
        AckFrame ack = await source.ExpectAsync<AckFrame>();
        ReceiveResult result = await served.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(target.Started);
        Assert.AreSame(target, result.Target);
        Assert.AreEqual(result.ResumeDuration, ack.Ack.ResumeDuration);
        Assert.IsGreaterThanOrEqualTo(ready.Ready.PrepareDuration, ack.Ack.ResumeDuration, "the resume duration runs from Complete, like the prepare duration");
        Assert.AreEqual(source.Vm.SessionId, result.SessionId);
        Assert.IsTrue(source.Vm.SameMemory(target));
    }

    [TestMethod]
    public async Task CommitBeforeReady_IsAProtocolViolation_AndTheTargetNeverStarts()
    {
        await using Served served = Serve();
        await served.Source.HelloAndRoundAsync(0, 4);
        await served.Source.SendAsync(w => w.AppendCommit());

        await AssertViolationAsync(served, "Commit", "Commit arrived before Ready.");
    }

    [TestMethod]
    public async Task CommitInTheSameReadAsComplete_IsRefused_BeforeAnyReady()
    {
        await using Served served = Serve();
        await served.Source.HelloAndRoundAsync(0, ScriptedSource.Pages);
        await served.Source.SendAsync(w =>
        {
            w.AppendDeviceState(ScriptedVm.State);
            w.AppendDigests([new RegionDigest(0, RegionDigestAccumulator.Compute(served.Source.Vm.Region))]);
            w.AppendComplete();
            w.AppendCommit();
        });

        List<ReceivedFrame> rest = await AssertViolationAsync(served, "Commit", "Commit arrived before Ready.");
        Assert.IsFalse(rest.Exists(f => f is ReadyFrame), "no Ready for a stream that broke the commit step");
    }

    [TestMethod]
    public async Task AFrameAfterCompleteInTheSameRead_IsRefused()
    {
        await using Served served = Serve();
        await served.Source.HelloAndRoundAsync(0, 4);
        await served.Source.SendAsync(w =>
        {
            w.AppendDeviceState(ScriptedVm.State);
            w.AppendDigests([new RegionDigest(0, 0)]);
            w.AppendComplete();
            w.AppendZeroPages(0, [new PageRun(0, 1)]);
        });

        await AssertViolationAsync(served, "ZeroPages", "ZeroPages arrived after Complete.");
    }

    [TestMethod]
    public async Task AFrameAfterCommitInTheSameRead_ChangesNothing_TheVmRunsAndIsAcknowledged()
    {
        await using Served served = Serve();
        ScriptedSource source = served.Source;
        await source.ReadyAsync();
        await source.SendAsync(w =>
        {
            w.AppendCommit();
            w.AppendZeroPages(0, [new PageRun(0, ScriptedSource.Pages)]);
        });

        ReceiveResult result = await served.Receiving;
        await source.ExpectAsync<AckFrame>();

        // A completed receive leaves the connection to its owner: closed here, nothing else came.
        await served.Destination.Output.CompleteAsync();
        Assert.IsEmpty(await source.RestAsync(), "a running VM is not reported as a failure");
        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(served.Targets[0].Started);
        Assert.IsTrue(source.Vm.SameMemory(served.Targets[0]), "the stray ZeroPages was not applied");
    }

    [TestMethod]
    public async Task ALinkLostWhileTheAckIsSent_StillCompletes_TheVmRunsHere()
    {
        await using Served served = Serve();
        ScriptedSource source = served.Source;
        await source.ReadyAsync();

        // The source stops reading with an error: the destination's Ack flush fails.
        await source.Connection.Input.CompleteAsync(new IOException("link lost"));
        await source.SendAsync(w => w.AppendCommit());
        ReceiveResult result = await served.Receiving;

        Assert.AreEqual(MigrationStatus.Completed, result.Status, result.Reason);
        Assert.IsTrue(served.Targets[0].Started);
        Assert.IsFalse(served.Targets[0].Disposed);
        Assert.AreSame(served.Targets[0], result.Target, "the caller gets the VM that runs");
    }

    [TestMethod]
    public async Task ADigestMismatch_IsAnsweredWithError_AndTheTargetNeverStarts()
    {
        await using Served served = Serve();
        await served.Source.HelloAndRoundAsync(0, ScriptedSource.Pages - 1);
        await served.Source.SwitchoverAsync();

        ErrorFrame error = await served.Source.ExpectAsync<ErrorFrame>();
        ReceiveResult result = await served.Receiving;

        Assert.AreEqual(MigrationErrorCode.DigestMismatch, error.Error.Code);
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.StartsWith("digest mismatch: region 0", result.Reason!);
        Assert.IsFalse(served.Targets[0].Started);
        Assert.IsTrue(served.Targets[0].Disposed);
        Assert.IsNull(served.Targets[0].RestoredState, "no state is restored on memory that differs");
    }

    [TestMethod]
    public async Task ALostConnectionBeforeCommit_FailsWithTheVmReleased_NeverStarted()
    {
        await using Served served = Serve();
        await served.Source.ReadyAsync();
        await served.Source.Connection.Output.CompleteAsync();

        ReceiveResult result = await served.Receiving;

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.Contains("before the source's Commit", result.Reason!);
        Assert.IsFalse(served.Targets[0].Started);
        Assert.IsTrue(served.Targets[0].Disposed);
    }

    [TestMethod]
    public async Task ResumeOnASingleConnection_IsRefusedAsSessionUnavailable()
    {
        await using Served served = Serve();
        await served.Source.SendAsync(w => w.AppendResume(new MigrationResume(MigrationProtocol.Version, Guid.NewGuid(), 3)));

        await AssertUnavailableAsync(served, "listening receiver");
    }

    [TestMethod]
    public async Task QueryOnASingleConnection_IsRefusedAsSessionUnavailable()
    {
        await using Served served = Serve();
        await served.Source.SendAsync(w => w.AppendQuery(new SessionQuery(MigrationProtocol.Version, Guid.NewGuid(), SessionQueryAction.Commit)));

        await AssertUnavailableAsync(served, "queries need a listening receiver");
    }

    [TestMethod]
    [DataRow("Resume")]
    [DataRow("Query")]
    public async Task ResumeOrQueryAfterHello_IsAProtocolViolation(string frame)
    {
        await using Served served = Serve();
        await served.Source.HelloAndRoundAsync(0, 4);
        await served.Source.SendAsync(w =>
        {
            if (frame == "Resume")
            {
                w.AppendResume(new MigrationResume(MigrationProtocol.Version, served.Source.Vm.SessionId, 1));
            }
            else
            {
                w.AppendQuery(new SessionQuery(MigrationProtocol.Version, served.Source.Vm.SessionId, SessionQueryAction.Abort));
            }
        });

        await AssertViolationAsync(served, frame, $"{frame} arrived after the connection's first frame.");
    }

    private static async Task AssertUnavailableAsync(Served served, string why)
    {
        ErrorFrame error = await served.Source.ExpectAsync<ErrorFrame>();
        ReceiveResult result = await served.Receiving;

        Assert.AreEqual(MigrationErrorCode.SessionUnavailable, error.Error.Code);
        Assert.Contains(why, error.Error.Message);
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.AreEqual(0, served.Targets.Count, "nothing was built");
    }

    private static async Task<List<ReceivedFrame>> AssertViolationAsync(Served served, string frame, string message)
    {
        ReceiveResult result = await served.Receiving;
        List<ReceivedFrame> rest = await served.Source.RestAsync();

        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        MigrationProtocolException violation = Assert.IsInstanceOfType<MigrationProtocolException>(result.Error);
        Assert.AreEqual(frame, violation.Frame);
        Assert.Contains(message, result.Reason!);
        ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>(rest[^1]);
        Assert.AreEqual(MigrationErrorCode.ProtocolViolation, error.Error.Code);
        Assert.IsFalse(served.Targets[0].Started);
        Assert.IsTrue(served.Targets[0].Disposed, "the target of a violating source is released");
        return rest;
    }

    private static Served Serve()
    {
        var targets = new BuiltTargets();
        var receiver = new MigrationReceiver(targets.Create);
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(destination));
        return new Served(new ScriptedSource(source, new ScriptedVm()), destination, targets, receiving.WaitAsync(EngineHarness.Timeout));
    }

    private sealed record Served(ScriptedSource Source, IMigrationConnection Destination, BuiltTargets Targets, Task<ReceiveResult> Receiving) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Source.DisposeAsync();
            await Destination.DisposeAsync();
            Source.Vm.Dispose();
            Targets.DisposeAll();
        }
    }
}
