using System;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>One session on a destination: its states and the rules between them.</summary>
[TestClass]
public sealed class ReceiverSessionTests
{
    [TestMethod]
    public void ASessionNotReady_CannotStart()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            InvalidOperationException ex = Assert.ThrowsExactly<InvalidOperationException>(session.Start);
            Assert.Contains("is Receiving, not ready", ex.Message);
            Assert.IsFalse(target.Started);
        }
    }

    [TestMethod]
    public void TryStart_StartsAReadySessionOnce_ASecondCommitOnlyFindsItRunning()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            session.SetDeviceState(new System.Buffers.ReadOnlySequence<byte>(new byte[8]));
            session.SetDigests([new RegionDigest(0, new RegionDigestAccumulator(session.Target.Memory.Regions[0].PageCount).Value)]);
            session.MarkComplete();
            Assert.IsNull(session.Prepare(), "an untouched region digests like the zero region");
            Assert.AreEqual(DestinationSessionState.Ready, session.State);

            Assert.IsTrue(session.TryStart());
            Assert.IsFalse(session.TryStart(), "the Commit and a Commit query may both arrive: the VM starts once");
            Assert.IsTrue(target.Started);
            Assert.AreEqual(DestinationSessionState.Started, session.State);
            Assert.ThrowsExactly<InvalidOperationException>(session.Start);
        }
    }

    [TestMethod]
    public void Discard_ReleasesTheTargetOnce_AndTheSessionCannotContinue()
    {
        (ReceiverSession session, TestTarget target) = Open();
        session.Discard("first");
        session.Discard("second");

        Assert.AreEqual(DestinationSessionState.Discarded, session.State);
        Assert.AreEqual("first", session.DiscardReason);
        Assert.IsTrue(target.Disposed);
        Assert.ThrowsExactly<InvalidOperationException>(session.Reopen);
        Assert.AreEqual(DestinationSessionState.Discarded, session.Status().State);
    }

    [TestMethod]
    public void Prepare_WithoutDeviceStateOrDigests_IsAViolation()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            MigrationProtocolException ex = Assert.ThrowsExactly<MigrationProtocolException>(() => session.Prepare());
            Assert.AreEqual("Complete", ex.Frame);
            Assert.AreEqual(DestinationSessionState.Receiving, session.State);
        }
    }

    [TestMethod]
    public Task EachLaterConnection_CountsAsAReconnection_AndDetachReleasesAWaiter() => WithAConnectionAsync(async (session, target, connection) =>
    {
        Assert.IsTrue(session.WaitReleasedAsync().IsCompleted, "nobody owns a fresh session");

        session.Attach(connection);
        Task released = session.WaitReleasedAsync();
        Assert.IsFalse(released.IsCompleted);
        Assert.AreEqual(0, session.Reconnections, "the first connection is no reconnection");
        session.Detach(connection);
        await released.WaitAsync(EngineHarness.Timeout);

        session.Attach(connection);
        Assert.AreEqual(1, session.Reconnections);
    });

    [TestMethod]
    public Task DiscardingASessionAConnectionOwns_ReleasesTheMemoryOnlyWhenTheConnectionLetsGo() => WithAConnectionAsync((session, target, connection) =>
    {
        session.Attach(connection);

        session.Discard("aborted by a query");

        Assert.AreEqual(DestinationSessionState.Discarded, session.State);
        Assert.IsFalse(target.Disposed, "the owning connection may be writing into the memory");
        InvalidOperationException ex = Assert.ThrowsExactly<InvalidOperationException>(() => session.WriteZeroPages("ZeroPages", 0, 0, 1));
        Assert.Contains("was released (aborted by a query)", ex.Message);
        Assert.ThrowsExactly<InvalidOperationException>(() => session.Prepare());

        session.Detach(connection);
        Assert.IsTrue(target.Disposed);
        return Task.CompletedTask;
    });

    [TestMethod]
    public Task ADiscardWhileTheVmStarts_WaitsForTheStart_AndLeavesTheRunningVmItsMemory() => WithAConnectionAsync(async (session, target, connection) =>
    {
        session.Attach(connection);
        MakeReady(session);
        Task<bool> discarding = null!;
        bool waitedForTheStart = false;
        target.BeforeStart = () =>
        {
            // A query's abort (or a new migration) arrives while the Commit starts the VM.
            discarding = Contender.RunUntilBlocked(() => session.Discard("aborted by a query"));
            waitedForTheStart = !discarding.IsCompleted;
        };

        Assert.IsTrue(session.TryStart());
        bool discarded = await discarding.WaitAsync(EngineHarness.Timeout);
        Assert.IsTrue(waitedForTheStart, "the discard did not wait for the start");
        session.Detach(connection);

        Assert.IsFalse(discarded, "a started VM is not discarded");
        Assert.AreEqual(DestinationSessionState.Started, session.State);
        Assert.IsNull(session.DiscardReason);
        Assert.IsFalse(target.Disposed, "the running VM's memory stays when its connection lets go");
    });

    [TestMethod]
    public void ADiscardWhileTheDeviceStateIsRestored_KeepsTheSessionFromBecomingReady()
    {
        (ReceiverSession session, TestTarget target) = Open();
        target.BeforeRestore = () => session.Discard("aborted by a query");
        Complete(session);

        InvalidOperationException ex = Assert.ThrowsExactly<InvalidOperationException>(() => session.Prepare());

        Assert.Contains("was released (aborted by a query)", ex.Message);
        Assert.AreEqual(DestinationSessionState.Discarded, session.State);
        Assert.ThrowsExactly<InvalidOperationException>(session.Start);
        Assert.IsFalse(target.Started);
    }

    [TestMethod]
    public void EncodedPages_AreDecodedIntoGuestMemory_DeltasOnTheCopyReceivedLast_AndDigested()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            byte[] page = new byte[MigrationProtocol.PageSize];
            new Random(9).NextBytes(page);
            session.WriteEncodedPage(0, 3, PageEncoding.Raw, new System.Buffers.ReadOnlySequence<byte>(page));
            byte[] changed = (byte[])page.Clone();
            changed[10] ^= 1;
            byte[] delta = new byte[MigrationProtocol.PageSize];
            int length = PageDelta.Encode(page, changed, delta);
            session.WriteEncodedPage(0, 3, PageEncoding.Delta, new System.Buffers.ReadOnlySequence<byte>(delta, 0, length));

            Assert.IsTrue(target.Memory.Regions[0].GetPage(3).SequenceEqual(changed));
            Assert.AreEqual(2UL, session.Pages);
            var expected = new RegionDigestAccumulator(target.Memory.Regions[0].PageCount);
            expected.Update(3, changed);
            session.SetDeviceState(new System.Buffers.ReadOnlySequence<byte>(new byte[8]));
            session.SetDigests([new RegionDigest(0, expected.Value)]);
            session.MarkComplete();
            Assert.IsNull(session.Prepare(), "the digest covers the decoded bytes");
        }
    }

    [TestMethod]
    public void AfterRoundZero_TheShortZeroRunsBetweenData_AreBacked_AndLaterPagesLandThere()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            byte[] page = new byte[MigrationProtocol.PageSize];
            page.AsSpan().Fill(7);
            foreach (ulong p in new ulong[] { 0, 1, 2, 3, 6, 7, 8, 9 })
            {
                session.WriteEncodedPage(0, p, PageEncoding.Raw, new System.Buffers.ReadOnlySequence<byte>(page));
            }

            Assert.AreEqual(0UL, session.HolesPopulated, "not during round 0");
            session.EndRound(0);
            Assert.IsTrue(System.Threading.SpinWait.SpinUntil(() => session.HolesPopulated == 2, TimeSpan.FromSeconds(30)));
            session.EndRound(1);
            System.Threading.Thread.Sleep(20);
            Assert.AreEqual(2UL, session.HolesPopulated, "pages 4 and 5, once; nothing past the data");

            session.WriteEncodedPage(0, 5, PageEncoding.Raw, new System.Buffers.ReadOnlySequence<byte>(page));
            Assert.IsTrue(target.Memory.Regions[0].GetPage(5).SequenceEqual(page));
            Assert.IsTrue(target.Memory.Regions[0].GetPage(4).IndexOfAnyExcept((byte)0) < 0);
            session.MarkComplete();
        }
    }

    [TestMethod]
    public void EncodedPage_OutsideTheRegion_OrMalformed_IsAProtocolViolation()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            ulong pages = target.Memory.Regions[0].PageCount;
            var zero = new System.Buffers.ReadOnlySequence<byte>([]);
            Assert.AreEqual("firstPage", Assert.ThrowsExactly<MigrationProtocolException>(() => session.WriteEncodedPage(0, pages, PageEncoding.Zero, zero)).Field);
            Assert.AreEqual("region", Assert.ThrowsExactly<MigrationProtocolException>(() => session.WriteEncodedPage(1, 0, PageEncoding.Zero, zero)).Field);
            MigrationProtocolException bad = Assert.ThrowsExactly<MigrationProtocolException>(() =>
                session.WriteEncodedPage(0, 0, PageEncoding.Delta, new System.Buffers.ReadOnlySequence<byte>([0x80])));
            Assert.AreEqual("PageDelta", bad.Frame);
        }
    }

    /// <summary>Runs <paramref name="test"/> on a fresh session and a receiver connection (never run) that can own it.</summary>
    private static async Task WithAConnectionAsync(Func<ReceiverSession, TestTarget, ReceiverConnection, Task> test)
    {
        (ReceiverSession session, TestTarget target) = Open();
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        using (target)
        {
            await test(session, target, new ReceiverConnection(new MigrationReceiverOptions(), _ => throw new AssertFailedException("never built"), NullLogger.Instance, null, destination));
        }
    }

    [TestMethod]
    public void FreshMemory_IsAdvisedHugePages_AndBackedAheadOnlyOnceStarted()
    {
        (ReceiverSession session, TestTarget target) = Open();
        using (target)
        {
            GuestMemoryRegion region = target.Memory.Regions[0];
            Assert.IsTrue(FreshMemory.AdvisedHugePages(region));
            Assert.AreEqual(region.Size, session.FreshBytes);
            Assert.AreEqual(region.Size, session.HugePageBytes);
            System.Threading.Thread.Sleep(50);
            Assert.AreEqual(0UL, FreshMemory.Populated(region).Count(), "nothing backed before the HelloAck is queued");

            session.StartPopulating();
            Assert.IsTrue(System.Threading.SpinWait.SpinUntil(() => FreshMemory.Populated(region).Count() > 0, TimeSpan.FromSeconds(30)));
            session.MarkComplete();
        }
    }

    [TestMethod]
    public void WithoutHugePages_FreshMemoryKeepsSmallPages()
    {
        TestTarget? built = null;
        ReceiverSession session = ReceiverSession.Open(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20), new MigrationReceiverOptions { HugePages = false }, hello => built = new TestTarget(hello));
        TestTarget target = built!;
        using (target)
        {
            Assert.IsFalse(FreshMemory.AdvisedHugePages(target.Memory.Regions[0]));
            Assert.AreEqual(target.Memory.Regions[0].Size, session.FreshBytes);
            Assert.AreEqual(0UL, session.HugePageBytes);
            session.MarkComplete();
        }
    }

    [TestMethod]
    public void MemoryThatHeldData_IsLeftAsItWas()
    {
        TestTarget? built = null;
        ReceiverSession session = ReceiverSession.Open(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20), new MigrationReceiverOptions(), hello =>
        {
            built = new TestTarget(hello);
            built.Memory.Regions[0].GetPage(3).Fill(1);
            return built;
        });
        TestTarget target = built!;
        using (target)
        {
            Assert.IsFalse(FreshMemory.AdvisedHugePages(target.Memory.Regions[0]), "a target's own memory keeps its pages");
            Assert.AreEqual(0UL, session.FreshBytes);
            Assert.AreEqual(0UL, session.HugePageBytes);
            session.StartPopulating();
            System.Threading.Thread.Sleep(50);
            Assert.AreEqual(1UL, FreshMemory.Populated(target.Memory.Regions[0]).Count());
            session.MarkComplete();
        }
    }

    /// <summary>Complete with the state and digests of untouched memory, checked: the session is ready.</summary>
    internal static void MakeReady(ReceiverSession session)
    {
        Complete(session);
        Assert.IsNull(session.Prepare(), "an untouched region digests like the zero region");
    }

    /// <summary>The device state and the digests of untouched memory, then Complete.</summary>
    private static void Complete(ReceiverSession session)
    {
        session.SetDeviceState(new System.Buffers.ReadOnlySequence<byte>(new byte[8]));
        session.SetDigests([new RegionDigest(0, new RegionDigestAccumulator(session.Target.Memory.Regions[0].PageCount).Value)]);
        session.MarkComplete();
    }

    private static (ReceiverSession Session, TestTarget Target) Open()
    {
        TestTarget? built = null;
        ReceiverSession session = ReceiverSession.Open(MigrationReceiverOptionsTests.Hello(1, 1, 1UL << 20), new MigrationReceiverOptions(), hello => built = new TestTarget(hello));
        return (session, built!);
    }
}
