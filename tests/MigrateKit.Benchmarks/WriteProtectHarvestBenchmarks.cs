using System;
using BenchmarkDotNet.Attributes;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.Benchmarks;

/// <summary>
/// One harvest of 1 GiB of populated, write-protected memory in which <see cref="Dirty"/>
/// scattered pages were written: <see cref="IDirtyPageTracker.Harvest"/>, which protects them
/// again, against <see cref="IDirtyPageTracker.HarvestFinal"/>, the switchover's, which only
/// reads. The writes happen before each harvest and are not timed.
/// </summary>
[InvocationCount(1)]
public class WriteProtectHarvestBenchmarks
{
    private GuestMemoryLayout _memory = null!;
    private WriteProtectTracker _tracker = null!;
    private DirtyBitmap[] _into = null!;
    private ulong[] _pages = null!;
    private byte _fill;

    /// <summary>Pages written before each harvest, spread over the region.</summary>
    [Params(0, 200, 2000)]
    public int Dirty { get; set; }

    /// <summary>Whether the harvest is the final kind (reads only).</summary>
    [Params(false, true)]
    public bool Final { get; set; }

    /// <summary>Maps and populates 1 GiB and starts tracking it.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _memory = GuestMemoryLayout.Create(1UL << 30);
        GuestMemoryRegion region = _memory.Regions[0];
        region.GetSpan(0, 1 << 30).Fill(1);
        _tracker = new WriteProtectTracker(_memory);
        _tracker.Start();
        _into = [new DirtyBitmap(region.PageCount)];
        var random = new Random(1);
        _pages = new ulong[Dirty];
        for (int i = 0; i < _pages.Length; i++)
        {
            _pages[i] = (ulong)random.NextInt64((long)region.PageCount);
        }
    }

    /// <summary>Writes the pages (a read-only harvest leaves them written: writing again takes no fault).</summary>
    [IterationSetup]
    public void Write()
    {
        _fill++;
        foreach (ulong page in _pages)
        {
            _memory.Regions[0].GetPage(page)[0] = _fill;
        }

        _into[0].ClearAll();
    }

    /// <summary>The harvest, re-arming or not.</summary>
    [Benchmark]
    public ulong Harvest() => (Final ? _tracker.HarvestFinal(_into) : _tracker.Harvest(_into)).DirtyPages;

    /// <summary>Stops tracking and unmaps the memory.</summary>
    [GlobalCleanup]
    public void Cleanup()
    {
        _tracker.Dispose();
        _memory.Dispose();
    }
}
