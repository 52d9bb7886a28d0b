using System;
using System.Collections.Generic;
using LibvirtSharp;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>
/// Typed-parameter dictionaries (as libvirt returns them, with its real field names and types) mapped onto
/// JobStats and DirtyRateInfo, and the capabilities parser. Needs no libvirt.
/// </summary>
[TestClass]
public sealed class LibvirtMappingTests
{
    [TestMethod]
    public void JobStats_MapsEveryLibvirtJobField()
    {
        // A QEMU live migration in its second iteration, with every VIR_DOMAIN_JOB_* field of libvirt 9.0.
        var parameters = new Dictionary<string, object>
        {
            ["operation"] = 5,
            ["time_elapsed"] = 1200UL,
            ["time_elapsed_net"] = 1190UL,
            ["time_remaining"] = 300UL,
            ["downtime"] = 41UL,
            ["downtime_net"] = 39UL,
            ["setup_time"] = 7UL,
            ["data_total"] = 1_000_000UL,
            ["data_processed"] = 600_000UL,
            ["data_remaining"] = 400_000UL,
            ["memory_total"] = 900_000UL,
            ["memory_processed"] = 550_000UL,
            ["memory_remaining"] = 350_000UL,
            ["memory_constant"] = 100UL,
            ["memory_normal"] = 130UL,
            ["memory_normal_bytes"] = 532_480UL,
            ["memory_bps"] = 125_000_000UL,
            ["memory_dirty_rate"] = 2500UL,
            ["memory_page_size"] = 4096UL,
            ["memory_iteration"] = 1UL,
            ["memory_postcopy_requests"] = 3UL,
            ["disk_total"] = 100UL,
            ["disk_processed"] = 50UL,
            ["disk_remaining"] = 50UL,
            ["disk_bps"] = 10UL,
            ["compression_cache"] = 67_108_864UL,
            ["compression_bytes"] = 11UL,
            ["compression_pages"] = 12UL,
            ["compression_cache_misses"] = 13UL,
            ["compression_overflow"] = 14UL,
            ["auto_converge_throttle"] = 20,
            ["success"] = true,
            ["errmsg"] = "none",
            ["disk_temp_used"] = 15UL,
            ["disk_temp_total"] = 16UL,
        };

        JobStats stats = JobStats.FromParameters(DomainJobType.Unbounded, parameters);

        Assert.AreEqual(DomainJobType.Unbounded, stats.Type);
        Assert.AreEqual(5, stats.Operation);
        Assert.AreEqual(1200UL, stats.TimeElapsedMs);
        Assert.AreEqual(1190UL, stats.TimeElapsedNetMs);
        Assert.AreEqual(300UL, stats.TimeRemainingMs);
        Assert.AreEqual(41UL, stats.DowntimeMs);
        Assert.AreEqual(39UL, stats.DowntimeNetMs);
        Assert.AreEqual(7UL, stats.SetupTimeMs);
        Assert.AreEqual(1_000_000UL, stats.DataTotal);
        Assert.AreEqual(600_000UL, stats.DataProcessed);
        Assert.AreEqual(400_000UL, stats.DataRemaining);
        Assert.AreEqual(900_000UL, stats.MemoryTotal);
        Assert.AreEqual(550_000UL, stats.MemoryProcessed);
        Assert.AreEqual(350_000UL, stats.MemoryRemaining);
        Assert.AreEqual(100UL, stats.MemoryConstant);
        Assert.AreEqual(130UL, stats.MemoryNormal);
        Assert.AreEqual(532_480UL, stats.MemoryNormalBytes);
        Assert.AreEqual(125_000_000UL, stats.MemoryBps);
        Assert.AreEqual(2500UL, stats.MemoryDirtyRate);
        Assert.AreEqual(4096UL, stats.MemoryPageSize);
        Assert.AreEqual(1UL, stats.MemoryIteration);
        Assert.AreEqual(3UL, stats.MemoryPostcopyRequests);
        Assert.AreEqual(100UL, stats.DiskTotal);
        Assert.AreEqual(50UL, stats.DiskProcessed);
        Assert.AreEqual(50UL, stats.DiskRemaining);
        Assert.AreEqual(10UL, stats.DiskBps);
        Assert.AreEqual(67_108_864UL, stats.CompressionCache);
        Assert.AreEqual(11UL, stats.CompressionBytes);
        Assert.AreEqual(12UL, stats.CompressionPages);
        Assert.AreEqual(13UL, stats.CompressionCacheMisses);
        Assert.AreEqual(14UL, stats.CompressionOverflow);
        Assert.AreEqual(20, stats.AutoConvergeThrottle);
        Assert.IsTrue(stats.Success);
        Assert.AreEqual("none", stats.ErrorMessage);
        Assert.AreEqual(15UL, stats.DiskTempUsed);
        Assert.AreEqual(16UL, stats.DiskTempTotal);
        Assert.AreSame(parameters, stats.Raw);
    }

    [TestMethod]
    public void JobStats_LeavesUnreportedFieldsNull_AndKeepsUnknownOnesInRaw()
    {
        var parameters = new Dictionary<string, object> { ["time_elapsed"] = 5UL, ["vfio_data_transferred"] = 9UL };

        JobStats stats = JobStats.FromParameters(DomainJobType.None, parameters);

        Assert.AreEqual(5UL, stats.TimeElapsedMs);
        Assert.IsNull(stats.DataTotal);
        Assert.IsNull(stats.Operation);
        Assert.IsNull(stats.Success);
        Assert.IsNull(stats.ErrorMessage);
        Assert.AreEqual(9UL, stats.Raw["vfio_data_transferred"]);
    }

    [TestMethod]
    public void JobStats_AcceptsNarrowerIntegerTypes_ButNotNegativeOnes()
    {
        var parameters = new Dictionary<string, object> { ["data_total"] = 7u, ["data_processed"] = 8L, ["data_remaining"] = -1L, ["operation"] = 4u };

        JobStats stats = JobStats.FromParameters(DomainJobType.Bounded, parameters);

        Assert.AreEqual(7UL, stats.DataTotal);
        Assert.AreEqual(8UL, stats.DataProcessed);
        Assert.IsNull(stats.DataRemaining);
        Assert.AreEqual(4, stats.Operation);
    }

    [TestMethod]
    public void CompletedJobEvent_IsFailed_OnlyWhenLibvirtReportsNoSuccess()
    {
        Assert.AreEqual(DomainJobType.Failed, JobStats.FromCompletedJob(new Dictionary<string, object> { ["success"] = false, ["errmsg"] = "boom" }).Type);
        Assert.AreEqual(DomainJobType.Completed, JobStats.FromCompletedJob(new Dictionary<string, object> { ["success"] = true }).Type);
        Assert.AreEqual(DomainJobType.Completed, JobStats.FromCompletedJob(new Dictionary<string, object> { ["downtime"] = 30UL }).Type);
    }

    [TestMethod]
    public void DirtyRate_MapsLibvirtDirtyRateStatistics_IndexingVcpusByNumber()
    {
        var stats = new Dictionary<string, object>
        {
            ["state.state"] = 1,
            ["dirtyrate.calc_status"] = 2,
            ["dirtyrate.calc_start_time"] = 1_700_000_000L,
            ["dirtyrate.calc_period"] = 3,
            ["dirtyrate.megabytes_per_second"] = 42L,
            ["dirtyrate.calc_mode"] = "dirty-ring",
            ["dirtyrate.vcpu.1.megabytes_per_second"] = 30UL,
            ["dirtyrate.vcpu.0.megabytes_per_second"] = 12UL,
            ["dirtyrate.vcpu.3.megabytes_per_second"] = 7UL,
        };

        DirtyRateInfo info = DirtyRateInfo.FromStats(stats);

        Assert.AreEqual(DirtyRateCalcStatus.Measured, info.Status);
        Assert.AreEqual(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), info.StartTime);
        Assert.AreEqual(1_700_000_000L, info.StartTimeSeconds);
        Assert.AreEqual(TimeSpan.FromSeconds(3), info.Period);
        Assert.AreEqual(42UL, info.MegabytesPerSecond);
        Assert.AreEqual("dirty-ring", info.Mode);
        CollectionAssert.AreEqual(new ulong[] { 12, 30, 0, 7 }, new List<ulong>(info.VcpuMegabytesPerSecond));
    }

    [TestMethod]
    public void DirtyRate_WithoutStatistics_IsUnstarted()
    {
        DirtyRateInfo info = DirtyRateInfo.FromStats(new Dictionary<string, object>());

        Assert.AreEqual(DirtyRateCalcStatus.Unstarted, info.Status);
        Assert.IsNull(info.StartTime);
        Assert.AreEqual(TimeSpan.Zero, info.Period);
        Assert.IsNull(info.MegabytesPerSecond);
        Assert.IsNull(info.Mode);
        Assert.IsEmpty(info.VcpuMegabytesPerSecond);
    }

    [TestMethod]
    public void HostUuid_IsReadFromCapabilities_OrEmptyWithoutOne()
    {
        const string withUuid = "<capabilities><host><uuid>4c4c4544-0054-4a10-8052-b9c04f4e3332</uuid><cpu><arch>x86_64</arch></cpu></host></capabilities>";
        const string withoutUuid = "<capabilities><host><cpu><arch>i686</arch></cpu></host></capabilities>";

        Assert.AreEqual(Guid.Parse("4c4c4544-0054-4a10-8052-b9c04f4e3332"), LibvirtConnection.ParseHostUuid(withUuid));
        Assert.AreEqual(Guid.Empty, LibvirtConnection.ParseHostUuid(withoutUuid));
    }
}
