using System;
using System.Collections.Generic;
using MigrateKit.Estimation;
using MigrateKit.Migration;

namespace MigrateKit.Tests.Reports;

/// <summary>Reports built by hand, shaped like the ones PreCopyEngine writes.</summary>
internal static class SampleReports
{
    private const ulong Page = 4096;

    /// <summary>
    /// 256 MiB over about 100 MiB/s: a full copy, seven shrinking rounds with a growing hot set
    /// held back and the throttle rising, then the switchover; 212 ms actual against 190 ms predicted.
    /// </summary>
    internal static MigrationReport Converging()
    {
        // round, pages sent, zero pages, dirty, hot, deferred, dirty rate, bandwidth MB/s, throttle, predicted ms, predicted total ms, verdict, action
        var plan = new (int Round, ulong Sent, ulong Zero, ulong Dirty, ulong Hot, ulong Deferred, double Rate, double Mb, int Throttle, double Predicted, double? Total, string Verdict, string Action)[]
        {
            (0, 52_000, 13_536, 24_000, 0, 0, 11_700, 101, 0, 960, null, "unknown", "continue"),
            (1, 24_000, 0, 15_500, 9_000, 0, 16_400, 103, 0, 620, null, "stalled", "throttle"),
            (2, 15_500, 0, 11_000, 9_800, 4_000, 17_700, 102, 20, 440, 9_000, "converging", "defer"),
            (3, 7_000, 0, 8_200, 10_100, 5_200, 13_200, 100, 40, 350, 6_200, "converging", "throttle"),
            (4, 3_000, 0, 6_100, 10_200, 5_600, 12_000, 99, 55, 305, 4_900, "converging", "throttle"),
            (5, 500, 0, 4_600, 10_300, 5_800, 10_400, 101, 65, 262, 4_300, "converging", "throttle"),
            (6, 1_200, 0, 3_400, 10_300, 5_900, 9_400, 100, 70, 228, 3_900, "converging", "continue"),
            (7, 900, 0, 2_500, 10_300, 6_000, 9_000, 100, 70, 190, 3_700, "converging", "switchover"),
        };
        var rows = new List<RoundReport>();
        ulong bytes = 0;
        ulong pages = 0;
        foreach (var p in plan)
        {
            ulong sent = (p.Sent * (Page + 8)) + (p.Zero * 16);
            bytes += sent;
            pages += p.Sent;
            rows.Add(new RoundReport
            {
                Round = p.Round,
                BytesSent = sent,
                PagesSent = p.Sent,
                ZeroPages = p.Zero,
                DurationMs = (sent / (p.Mb * 1e6) * 1000) + 6,
                SendMs = sent / (p.Mb * 1e6) * 1000,
                DirtyPages = p.Dirty,
                HotPages = p.Hot,
                DeferredPages = p.Deferred,
                DirtyRate = p.Rate,
                Bandwidth = p.Mb * 1e6,
                ThrottlePercent = p.Throttle,
                PredictedDowntimeMs = p.Predicted,
                PredictedTotalMs = p.Total,
                Verdict = Enum.Parse<ConvergenceVerdict>(p.Verdict, ignoreCase: true),
                Action = Enum.Parse<RoundAction>(p.Action, ignoreCase: true),
            });
        }

        ulong switchoverPages = 2_500 + 6_000;
        ulong switchoverBytes = switchoverPages * (Page + 8);
        rows.Add(new RoundReport
        {
            Round = 8,
            BytesSent = switchoverBytes,
            PagesSent = switchoverPages,
            DurationMs = 212,
            DirtyPages = 0,
            HotPages = 10_300,
            DeferredPages = 6_000,
            Bandwidth = 98e6,
            PredictedDowntimeMs = 190,
            Verdict = ConvergenceVerdict.Converging,
            Action = RoundAction.Switchover,
        });
        return new MigrationReport
        {
            Status = MigrationStatus.Completed,
            MemoryBytes = 256UL << 20,
            Rounds = 8,
            BytesSent = bytes + switchoverBytes,
            PagesSent = pages + switchoverPages,
            TotalMs = 4_120,
            DowntimeMs = 212.4,
            PredictedDowntimeMs = 190,
            DowntimeLimitMs = 300,
            PredictedDowntimeParts = new DowntimeParts(0.1, 1.2, 185.4, 3.3),
            PredictedCorrectionMs = 1.8,
            ActualDowntimeParts = new DowntimeParts(0.1, 0.9, 201.2, 10.2),
            PredictionErrorPercent = (212.4 - 190) / 212.4 * 100,
            ResumeMs = 2.7,
            MaxThrottlePercent = 70,
            HotPagesDeferred = 6_000,
            SwitchoverPages = switchoverPages,
            DigestsMatched = true,
            SourceMemoryVerified = true,
            RoundsDetail = rows,
        };
    }

    /// <summary>Failed before the first round finished: no rounds, no downtime.</summary>
    internal static MigrationReport FailedWithoutRounds() => new()
    {
        Status = MigrationStatus.Failed,
        FailedPhase = MigrationPhase.Handshake,
        Reason = "the destination refused the connection <tcp:127.0.0.1:7000> & gave up",
        MemoryBytes = 1UL << 30,
        TotalMs = 12.5,
        DowntimeLimitMs = 300,
    };

    /// <summary>Aborted by the policy after one round whose forecast was far over the limit (a log-scale forecast).</summary>
    internal static MigrationReport AbortedAfterOneRound() => new()
    {
        Status = MigrationStatus.Aborted,
        Reason = "fixed costs and deferred pages alone take 2400.0 ms, over the limit of 50.0 ms",
        MemoryBytes = 64UL << 20,
        Rounds = 1,
        BytesSent = 64UL << 20,
        PagesSent = 16_384,
        TotalMs = 700,
        DowntimeLimitMs = 50,
        MaxThrottlePercent = 0,
        RoundsDetail =
        [
            new RoundReport
            {
                Round = 0, BytesSent = 64UL << 20, PagesSent = 16_384, DurationMs = 690, DirtyPages = 16_000, HotPages = 15_000,
                DirtyRate = 30_000, Bandwidth = 95e6, PredictedDowntimeMs = 2_400, Verdict = ConvergenceVerdict.Diverging, Action = RoundAction.Abort,
            },
        ],
    };

    /// <summary>A libvirt-style report: QEMU switched over by itself, so there is a downtime but no switchover row.</summary>
    internal static MigrationReport LibvirtCompleted() => new()
    {
        Status = MigrationStatus.Completed,
        MemoryBytes = 1UL << 30,
        Rounds = 3,
        BytesSent = 1_300_000_000,
        TotalMs = 11_000,
        DowntimeMs = 48,
        PredictedDowntimeMs = 5_000,
        DowntimeLimitMs = 300,
        MaxThrottlePercent = 30,
        RoundsDetail =
        [
            new RoundReport { Round = 1, BytesSent = 1_000_000_000, DirtyPages = 60_000, DirtyRate = 20_000, Bandwidth = 110e6, PredictedDowntimeMs = 2_300, Verdict = ConvergenceVerdict.Unknown, Action = RoundAction.Continue },
            new RoundReport { Round = 2, BytesSent = 250_000_000, DirtyPages = 30_000, DirtyRate = 15_000, Bandwidth = 112e6, ThrottlePercent = 20, PredictedDowntimeMs = 1_100, Verdict = ConvergenceVerdict.Converging, Action = RoundAction.Continue },
            new RoundReport { Round = 3, BytesSent = 50_000_000, DirtyPages = 2_000, DirtyRate = 9_000, Bandwidth = 111e6, ThrottlePercent = 30, PredictedDowntimeMs = 80, Verdict = ConvergenceVerdict.Converging, Action = RoundAction.Continue },
        ],
    };
}
