using System;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Readme;

/// <summary>The README's migration example, kept compiling and true.</summary>
[TestClass]
[TestCategory("WriteProtect")]
public sealed class ReadmeMigrationExampleTests
{
    [TestInitialize]
    public void Require() => WriteTrackingRequirement.Require();

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task ReadmeMigrationExample_CompletesAndTheDestinationKeepsPassing()
    {
        // --- as in README.md ---
        using var source = new HostVm(256UL << 20);
        source.Load(HostWorkload.Verifier(1UL << 20, 17UL << 20));
        source.SetPaceLimit(25_000);
        source.Start();
        source.WaitForPass(1, TimeSpan.FromSeconds(10));

        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        var receiver = new MigrationReceiver(hello => new HostVm(hello.Regions));
        Task<ReceiveResult> receiving = Task.Run(async () =>
        {
            await using IMigrationConnection incoming = await listener.AcceptAsync();
            return await receiver.ReceiveAsync(incoming);
        });

        MigrationReport report;
        int rounds = 0;
        await using (IMigrationConnection connection = await MigrationConnector.ConnectAsync(listener.LocalAddress))
        {
            using IDirtyPageTracker tracker = source.CreateTracker();   // stopped and released with the block
            var engine = new PreCopyEngine(source, tracker, new MigrationOptions
            {
                MaxDowntime = TimeSpan.FromMilliseconds(300),
                BandwidthLimit = 100L << 20,
                DowntimeHistory = DowntimeHistory.Shared,
            });
            report = await engine.MigrateAsync(connection, new SyncProgress(_ => rounds++));
        }

        using var destination = (HostVm)(await receiving).Target!;
        // --- end of the README's code ---

        Assert.AreEqual(MigrationStatus.Completed, report.Status, report.Reason);
        Assert.AreEqual(report.Rounds, rounds, "one progress report per pre-copy round");
        Assert.IsNotNull(report.DowntimeMs);
        Assert.IsNotNull(report.PredictedDowntimeMs);
        Assert.IsLessThanOrEqualTo(300.0, report.PredictedDowntimeHighMs!.Value, "the switchover waits for the interval's top to fit");
        Assert.IsGreaterThanOrEqualTo(report.PredictedDowntimeMs.Value, report.PredictedDowntimeHighMs.Value);
        uint passes = destination.GetStatus().Passes;
        Assert.IsTrue(destination.WaitForPass(passes + 2, TimeSpan.FromSeconds(30)));
        Assert.AreEqual(0L, destination.GetStatus().Failures);
    }

    /// <summary>Reports synchronously (Progress&lt;T&gt; posts to the thread pool, which would race the count).</summary>
    private sealed class SyncProgress(Action<MigrationProgress> report) : IProgress<MigrationProgress>
    {
        public void Report(MigrationProgress value) => report(value);
    }
}
