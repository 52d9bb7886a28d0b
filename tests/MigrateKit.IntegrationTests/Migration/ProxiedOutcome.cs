using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO.Hashing;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>How a <see cref="ProxiedMigration"/> ended on both sides, and the checks of that end state.</summary>
internal sealed class ProxiedOutcome
{
    private static readonly ulong ZeroPageHash = XxHash3.HashToUInt64(new byte[GuestMemoryLayout.PageSize]);
    private readonly ProxiedMigration _migration;

    internal ProxiedOutcome(ProxiedMigration migration, PreCopyEngine engine, MigrationReport report, ReceiveResult received, RecordingTarget? target)
    {
        _migration = migration;
        Engine = engine;
        Report = report;
        Received = received;
        Target = target;
    }

    internal PreCopyEngine Engine { get; }

    internal MigrationReport Report { get; }

    internal ReceiveResult Received { get; }

    /// <summary>The VM the destination built, or null when no Hello reached it.</summary>
    internal RecordingTarget? Target { get; }

    private IWorkloadVm Source => _migration.Source;

    private string Sides => $"source: {Report.Status} in {Report.FailedPhase} ({Report.Reason}); destination: {Received.Status} ({Received.Reason})";

    /// <summary>
    /// The migration failed in one of <paramref name="phases"/> and the VM runs on the source only: the
    /// source runs, unpaused and unthrottled; the destination ended Failed or Aborted, its receive
    /// returned, and the VM it built (if any) was never started and was released; every page the
    /// destination lacks is pending (see <see cref="AssertPendingIsWhatTheDestinationLacks"/>);
    /// and the source's verifier keeps passing, so its memory is intact.
    /// </summary>
    internal void AssertSourceKeepsTheVm(params MigrationPhase[] phases)
    {
        Assert.AreEqual(MigrationStatus.Failed, Report.Status, Sides);
        CollectionAssert.Contains(phases, Report.FailedPhase, Sides);
        Assert.IsFalse(Report.OutcomeUnknown, Sides);
        Assert.IsTrue(Source.IsRunning, $"the source must run after the failure; {Sides}");
        Assert.AreEqual(0, Source.ThrottlePercent, "the throttle is lifted");
        Assert.IsTrue(Received.Status is MigrationStatus.Failed or MigrationStatus.Aborted, Sides);
        Assert.IsNull(Received.Target, "a destination that did not complete hands out no VM");
        if (Target is not null)
        {
            Assert.IsFalse(Target.Started, "the destination never started the VM");
            Assert.IsTrue(Target.Disposed, "the destination released the VM it built");
        }

        if (Report.FailedPhase == MigrationPhase.Handshake)
        {
            // Before the HelloAck the engine has taken no dirty bit and sent no page: the tracker
            // never started, and nothing is pending, as on a fresh engine (every run begins with
            // all pages pending), so no page can be lost.
            Assert.IsFalse(_migration.Tracker.IsTracking, "tracking starts only after the handshake");
            Assert.IsTrue(Engine.PendingPages.All(p => p.IsEmpty));
            Assert.IsFalse(_migration.Proxy.Frames(Direction.ToDestination).Any(f => f.Type is FrameType.Pages or FrameType.ZeroPages or FrameType.EncodedPages));
        }
        else
        {
            AssertPendingIsWhatTheDestinationLacks();
        }

        AssertKeepsPassing(Source);
    }

    /// <summary>The migration completed through the proxy: the destination runs the VM, byte for byte, and the source is paused.</summary>
    internal void AssertCompleted()
    {
        Assert.AreEqual(MigrationStatus.Completed, Report.Status, Sides);
        Assert.AreEqual(MigrationStatus.Completed, Received.Status, Sides);
        Assert.IsTrue(Report.DigestsMatched);
        Assert.IsTrue(Report.SourceMemoryVerified, "the source's memory differs from what was sent: a write was missed");
        Assert.IsFalse(Source.IsRunning, "the source stays paused after handing over");
        Assert.IsTrue(Target is { Started: true, Disposed: false });
        AssertKeepsPassing(Target!.Vm);
    }

    /// <summary>Asserts the guest completes two more passes without a self-check failure.</summary>
    internal static void AssertKeepsPassing(IWorkloadVm vm)
    {
        VcpuStatus before = vm.GetStatus()[0];
        Assert.IsTrue(vm.WaitForPass(before.Passes + 2, TimeSpan.FromSeconds(60)), $"stuck at {vm.GetStatus()[0]}");
        VcpuStatus after = vm.GetStatus()[0];
        Assert.AreEqual(0L, after.Failures, $"self-check failed first at page {after.FirstFailedPage}");
    }

    /// <summary>
    /// Compares the two sides page by page, with the source paused for the look so nothing moves:
    /// <list type="bullet">
    /// <item>No page lost: every page whose bytes on the destination (as it held them when it
    /// released the VM; zero where it built none) differ from the source's is pending in the
    /// engine, or the guest wrote it after the engine's last harvest (the tracker, still running,
    /// holds it for the next attempt).</item>
    /// <item>Nothing extra: outside the range the guest writes, the pending pages are exactly the
    /// pages the destination has not acknowledged: those not sent before the RoundEnd of the last
    /// round the source saw acknowledged, plus those sent after it (in flight). Both sets are read
    /// off the frames the proxy forwarded. Inside the written range this equality cannot hold: a
    /// tracker marks a page when it is written, not when it is sent, so a page written just before
    /// it was read for sending is pending again after the harvest although the destination holds
    /// its bytes; there only the first check applies.</item>
    /// </list>
    /// </summary>
    internal void AssertPendingIsWhatTheDestinationLacks()
    {
        IReadOnlyList<GuestMemoryRegion> regions = Source.Memory.Regions;
        Source.Pause();
        try
        {
            DirtyBitmap[] since = regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
            _migration.Tracker.Harvest(since);
            ulong[][] source = RecordingTarget.HashPages(Source.Memory);
            ulong[][]? destination = Target?.PagesAtDisposal;
            bool[][] unacknowledged = Unacknowledged(regions, Report.RoundsDetail.Count);
            var lost = new List<string>();
            var extra = new List<string>();
            for (int r = 0; r < regions.Count; r++)
            {
                DirtyBitmap pending = Engine.PendingPages[r];
                for (ulong p = 0; p < regions[r].PageCount; p++)
                {
                    bool differs = source[r][p] != (destination?[r][p] ?? ZeroPageHash);
                    if (differs && !pending.Test(p) && !since[r].Test(p))
                    {
                        lost.Add($"{r}:{p}");
                    }

                    ulong address = regions[r].GuestPhysicalAddress + (p * GuestMemoryLayout.PageSize);
                    bool written = address >= ProxiedMigration.Written.Start && address < ProxiedMigration.Written.End;
                    if (!written && pending.Test(p) != unacknowledged[r][p])
                    {
                        extra.Add($"{r}:{p}{(pending.Test(p) ? " pending" : " not pending")}");
                    }
                }
            }

            Assert.IsEmpty(lost, $"{lost.Count} pages differ on the destination but are not pending, e.g. {string.Join(", ", lost.Take(5))}");
            Assert.IsEmpty(extra, $"{extra.Count} unwritten pages where pending is not 'unacknowledged', e.g. {string.Join(", ", extra.Take(5))}");
        }
        finally
        {
            Source.Resume();
        }
    }

    /// <summary>
    /// Pages the destination has not acknowledged, from the frames the proxy forwarded whole: not
    /// sent before the RoundEnd of round <paramref name="acknowledgedRounds"/> - 1, or sent after it.
    /// </summary>
    private bool[][] Unacknowledged(IReadOnlyList<GuestMemoryRegion> regions, int acknowledgedRounds)
    {
        bool[][] acknowledged = regions.Select(r => new bool[r.PageCount]).ToArray();
        bool[][] inFlight = regions.Select(r => new bool[r.PageCount]).ToArray();
        int roundEnds = 0;
        foreach (ProxyFrame frame in _migration.Proxy.Frames(Direction.ToDestination))
        {
            if (frame.Type == FrameType.RoundEnd)
            {
                roundEnds++;
            }
            else if (frame.Type is FrameType.Pages or FrameType.ZeroPages or FrameType.EncodedPages)
            {
                bool[][] into = roundEnds < acknowledgedRounds ? acknowledged : inFlight;
                foreach ((int region, ulong first, ulong count) in Runs(frame))
                {
                    Array.Fill(into[region], true, (int)first, (int)count);
                }
            }
        }

        return acknowledged.Select((a, r) => a.Select((sent, p) => !sent || inFlight[r][p]).ToArray()).ToArray();
    }

    /// <summary>The run table of a Pages or ZeroPages frame, or the pages of an EncodedPages frame (PROTOCOL.md §3), from the head the proxy kept.</summary>
    private static List<(int Region, ulong First, ulong Count)> Runs(ProxyFrame frame)
    {
        var list = new List<(int, ulong, ulong)>();
        byte[] head = frame.Head;
        int region = BinaryPrimitives.ReadInt32LittleEndian(head);
        int runs = BinaryPrimitives.ReadInt32LittleEndian(head.AsSpan(4));
        if (frame.Type == FrameType.EncodedPages)
        {
            // Entries of 12 bytes (page u64, encoding u8, reserved u8, length u16), each followed by its data.
            for (int i = 0, at = 8; i < runs; i++)
            {
                list.Add((region, BinaryPrimitives.ReadUInt64LittleEndian(head.AsSpan(at)), 1));
                at += 12 + BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(at + 10));
            }

            return list;
        }

        Assert.IsLessThanOrEqualTo(head.Length, 8 + (16 * runs), $"a {frame.Type} frame's run table outgrew the {FaultProxy.HeadBytes} bytes the proxy keeps");
        for (int i = 0; i < runs; i++)
        {
            ReadOnlySpan<byte> run = head.AsSpan(8 + (16 * i), 16);
            ulong count = frame.Type == FrameType.Pages ? BinaryPrimitives.ReadUInt32LittleEndian(run[8..]) : BinaryPrimitives.ReadUInt64LittleEndian(run[8..]);
            list.Add((region, BinaryPrimitives.ReadUInt64LittleEndian(run), count));
        }

        return list;
    }
}
