using BenchmarkDotNet.Attributes;
using MigrateKit.Estimation;
using MigrateKit.Memory;

namespace MigrateKit.Benchmarks;

/// <summary>
/// The heat map over 1 GiB of guest memory (262,144 pages), the work each pre-copy harvest adds
/// after the tracker's: a reset and one round of a scattered harvest, or a reset and two rounds,
/// the first dirtying every page (a guest that wrote all of its memory).
/// </summary>
public class PageHeatBenchmarks
{
    private const ulong Pages = 1UL << 18;

    private PageHeat _heat = null!;
    private DirtyBitmap _dirtied = null!;
    private DirtyBitmap _all = null!;

    /// <summary>Whether every page was dirtied in the round before.</summary>
    [Params(false, true)]
    public bool AllRecent { get; set; }

    /// <summary>Builds the heat map and a harvest of 200 scattered pages per 16 MiB.</summary>
    [GlobalSetup]
    public void Setup()
    {
        _heat = new PageHeat(Pages);
        _dirtied = new DirtyBitmap(Pages);
        _all = new DirtyBitmap(Pages);
        _all.SetRange(0, Pages);
        var random = new System.Random(42);
        for (ulong p = 0; p < Pages; p += 4096)
        {
            for (int i = 0; i < 200; i++)
            {
                _dirtied.Set(p + (ulong)random.Next(0, 4096));
            }
        }
    }

    /// <summary>Records one round, from the history it starts from.</summary>
    [Benchmark]
    public ulong Update()
    {
        _heat.Reset();
        if (AllRecent)
        {
            _heat.Update(_all);
        }

        _heat.Update(_dirtied);
        return _heat.HotCount;
    }
}
