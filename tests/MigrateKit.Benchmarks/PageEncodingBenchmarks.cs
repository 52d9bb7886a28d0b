using System;
using System.Collections.Generic;
using System.Globalization;
using System.Linq;
using BenchmarkDotNet.Attributes;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Benchmarks;

/// <summary>
/// The page encodings on 256 pages of one kind (1 MiB of page data per operation, 256 distinct
/// pairs so the caches see more than one page): <see cref="PageDelta"/> against the previous
/// version, and <see cref="PageCompression"/> of the current one. A page that an encoding refuses
/// (a random page) costs the refusal in the encode benchmarks and nothing in the decode ones.
/// <see cref="Encoder1MiB"/> is the sender's whole choice per page.
/// </summary>
public class PageEncodingBenchmarks
{
    private const int Pages = 256;
    private const int Page = SamplePages.PageSize;

    private byte[][] _previous = null!;
    private byte[][] _current = null!;
    private byte[][] _deltas = null!;
    private byte[][] _compressed = null!;
    private readonly byte[] _scratch = new byte[Page];
    private PageEncoder _encoder = null!;
    private bool _sendCurrent;

    /// <summary>What changed in the pages.</summary>
    [Params(SamplePageKind.OneByte, SamplePageKind.Counters, SamplePageKind.Text, SamplePageKind.Random)]
    public SamplePageKind Kind { get; set; }

    /// <summary>Creates the pages and their encoded forms.</summary>
    [GlobalSetup]
    public void Setup()
    {
        (byte[] Previous, byte[] Current)[] pairs = Enumerable.Range(1, Pages).Select(seed => SamplePages.Create(Kind, seed)).ToArray();
        _previous = pairs.Select(p => p.Previous).ToArray();
        _current = pairs.Select(p => p.Current).ToArray();
        _deltas = pairs.Select(p => Encoded(PageDelta.Encode(p.Previous, p.Current, _scratch))).ToArray();
        _compressed = pairs.Select(p => Encoded(PageCompression.TryCompress(p.Current, _scratch, PageCompression.FastLevel))).ToArray();
        _encoder = new PageEncoder(new SentPageCache(2L * Pages * Page), PageCompression.FastLevel);
        for (int i = 0; i < Pages; i++)
        {
            _encoder.Encode(0, (ulong)i, _previous[i], _scratch, out _, out _);
        }
    }

    /// <summary>
    /// <see cref="PageEncoder"/> with a warm cache and LZ4's fast mode on 256 pages: each
    /// operation sends the other version of every page, so each is a delta against the last
    /// (a random page: delta refused, compression refused, raw).
    /// </summary>
    [Benchmark]
    public int Encoder1MiB()
    {
        _sendCurrent = !_sendCurrent;
        byte[][] pages = _sendCurrent ? _current : _previous;
        int total = 0;
        for (int i = 0; i < Pages; i++)
        {
            _encoder.Encode(0, (ulong)i, pages[i], _scratch, out int length, out _);
            total += length;
        }

        return total;
    }

    /// <summary>Deltas of 256 pages against their previous versions.</summary>
    [Benchmark]
    public int DeltaEncode1MiB()
    {
        int total = 0;
        for (int i = 0; i < Pages; i++)
        {
            total += PageDelta.Encode(_previous[i], _current[i], _scratch);
        }

        return total;
    }

    /// <summary>Applies 256 deltas to the previous versions (in place: applying one twice gives the same page).</summary>
    [Benchmark]
    public int DeltaDecode1MiB()
    {
        for (int i = 0; i < Pages; i++)
        {
            PageDelta.Decode(_deltas[i], _previous[i]);
        }

        return _previous[Pages - 1][0];
    }

    /// <summary>LZ4's fast mode on 256 pages.</summary>
    [Benchmark]
    public int CompressFast1MiB() => CompressAll(PageCompression.FastLevel);

    /// <summary>LZ4-HC level 9 on 256 pages.</summary>
    [Benchmark]
    public int CompressHc9_1MiB() => CompressAll(9);

    /// <summary>Decompresses 256 pages compressed in fast mode.</summary>
    [Benchmark]
    public int Decompress1MiB()
    {
        for (int i = 0; i < Pages; i++)
        {
            if (_compressed[i].Length > 0)
            {
                PageCompression.Decompress(_compressed[i], _scratch);
            }
        }

        return _scratch[0];
    }

    /// <summary>
    /// The mean encoded size per page of each kind, as a Markdown table:
    /// <c>dotnet run -c Release --project tests/MigrateKit.Benchmarks -- page-encoding-sizes</c>.
    /// </summary>
    public static int PrintSizes()
    {
        Console.WriteLine("| Pages | Delta | LZ4 fast | LZ4-HC 9 |");
        Console.WriteLine("|---|---|---|---|");
        byte[] scratch = new byte[Page];
        foreach (SamplePageKind kind in Enum.GetValues<SamplePageKind>())
        {
            (byte[] Previous, byte[] Current)[] pairs = Enumerable.Range(1, Pages).Select(seed => SamplePages.Create(kind, seed)).ToArray();
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {kind} | {Mean(pairs.Select(p => PageDelta.Encode(p.Previous, p.Current, scratch)))} | {Mean(pairs.Select(p => PageCompression.TryCompress(p.Current, scratch, PageCompression.FastLevel)))} | {Mean(pairs.Select(p => PageCompression.TryCompress(p.Current, scratch, 9)))} |"));
        }

        return 0;
    }

    /// <summary>The mean size in bytes, or how many pages were refused.</summary>
    private static string Mean(IEnumerable<int> sizes)
    {
        int[] all = sizes.ToArray();
        int refused = all.Count(s => s < 0);
        return refused == all.Length ? $"refused ({refused}/{all.Length})" : string.Create(CultureInfo.InvariantCulture, $"{all.Where(s => s >= 0).Average():0.#} B{(refused > 0 ? $" ({refused} refused)" : "")}");
    }

    private int CompressAll(int level)
    {
        int total = 0;
        for (int i = 0; i < Pages; i++)
        {
            total += PageCompression.TryCompress(_current[i], _scratch, level);
        }

        return total;
    }

    private byte[] Encoded(int written) => written < 0 ? [] : _scratch[..written];
}
