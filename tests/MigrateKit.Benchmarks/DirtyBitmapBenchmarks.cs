using BenchmarkDotNet.Attributes;
using MigrateKit.Memory;

namespace MigrateKit.Benchmarks;

/// <summary>
/// Count, enumeration and coalescing over bitmaps for 1, 16 and 256 GiB of guest memory
/// (32 KiB, 512 KiB and 8 MiB of words). The pattern mixes long runs, isolated pages and empty
/// stretches, about 12 % of pages set.
/// </summary>
public class DirtyBitmapBenchmarks
{
    private DirtyBitmap _bitmap = null!;

    /// <summary>Guest memory covered by the bitmap, in GiB.</summary>
    [Params(1, 16, 256)]
    public int GiB { get; set; }

    /// <summary>Builds the bitmap.</summary>
    [GlobalSetup]
    public void Setup()
    {
        ulong pages = (ulong)GiB << 18;
        _bitmap = new DirtyBitmap(pages);
        var random = new System.Random(42);
        for (ulong p = 0; p < pages; p += 4096)
        {
            // Per 16 MiB: one run of 256 pages, 200 scattered pages, the rest clear.
            _bitmap.SetRange(p + (ulong)random.Next(0, 3000), 256);
            for (int i = 0; i < 200; i++)
            {
                _bitmap.Set(p + (ulong)random.Next(0, 4096));
            }
        }
    }

    /// <summary>Population count of the whole bitmap.</summary>
    [Benchmark]
    public ulong Count() => _bitmap.Count();

    /// <summary>Visits every set page.</summary>
    [Benchmark]
    public ulong EnumerateSetPages()
    {
        ulong sum = 0;
        foreach (ulong page in _bitmap.EnumerateSetPages())
        {
            sum += page;
        }

        return sum;
    }

    /// <summary>Coalesces set pages into runs.</summary>
    [Benchmark]
    public ulong EnumerateRuns()
    {
        ulong sum = 0;
        foreach (PageRun run in _bitmap.EnumerateRuns())
        {
            sum += run.Count;
        }

        return sum;
    }
}
