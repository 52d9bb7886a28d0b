using System.Linq;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Libvirt;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;

namespace MigrateKit.Tests.Libvirt;

[TestClass]
public sealed class LibvirtLogTests
{
    [TestMethod]
    public void Iteration_WritesTheRowAsOneLineWithStructuredValues()
    {
        var logger = new ListLogger<LibvirtMigrator>();
        var row = new RoundReport
        {
            Round = 3,
            BytesSent = 4096,
            DurationMs = 120.4,
            DirtyRate = 250.6,
            ThrottlePercent = 20,
            DeltaPages = 25000,
            DeltaBytes = 250000,
            DeltaCacheMisses = 300,
            DeltaOverflows = 2,
            PredictedDowntimeMs = 41.26,
            Verdict = ConvergenceVerdict.Converging,
            Action = RoundAction.RaiseLimit,
        };

        LibvirtLog.Iteration(logger, "web1", row, 8192);

        Logged entry = logger.Entries.Single();
        Assert.AreEqual(LogLevel.Debug, entry.Level);
        Assert.AreEqual(106, entry.EventId.Id);
        Assert.AreEqual("Iteration 3 of web1: 4096 bytes in 120 ms, 8192 bytes pending, dirty rate 251 pages/s, throttle 20%, deltas 25000 pages in 250000 bytes (300 cache misses, 2 overflows); predicted downtime 41.3 ms (converging); raiseLimit", entry.Message);
        Assert.AreEqual(8192UL, entry.State["PendingBytes"]);
        Assert.AreEqual("raiseLimit", entry.State["Action"]);
        Assert.AreEqual(3, entry.State["Iteration"]);
        Assert.AreEqual(300UL, entry.State["CacheMisses"]);
        StringAssert.StartsWith((string?)entry.State["{OriginalFormat}"], "Iteration {Iteration} of {Domain}");
    }

    [TestMethod]
    public void ProbeResult_ReadsAsMiBAndMilliseconds()
    {
        Assert.AreEqual("8.0 MiB in 12.5 ms", new ProbeResult(8 << 20, 12.5).ToString());
    }
}
