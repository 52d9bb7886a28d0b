using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Runtime;
using System.Threading;
using MigrateKit.Kvm;
using MigrateKit.Memory;

namespace MigrateKit.Benchmarks;

/// <summary>
/// The managed harvest and its C floor (<c>mk_harvest_floor</c>) in one run, interleaved (floor,
/// managed, managed, floor…: each alternation swaps which goes first) so a change of load on the
/// shared machine hits both:
/// <c>dotnet run -c Release --project tests/MigrateKit.Benchmarks -- harvest-vs-floor [ALTERNATIONS] [ITERATIONS]</c>.
/// Both sides run the same sequence and are timed the same way: one VM per measurement, three
/// untimed harvests, then ITERATIONS harvests timed one by one with <c>CLOCK_MONOTONIC</c>, median.
/// </summary>
internal static class HarvestVsFloor
{
    private static readonly int[] SlotGiB = [1, 16];
    private static readonly string[] Modes = ["idle", "dirty"];

    /// <summary>Runs the comparison and prints a Markdown table of the medians.</summary>
    public static int Run(string[] args)
    {
        int alternations = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 9;
        int iterations = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 500;
        string floor = Path.Combine(AppContext.BaseDirectory, "mk_harvest_floor");
        if (alternations < 1 || iterations < 1 || !File.Exists(floor))
        {
            Console.Error.WriteLine($"usage: harvest-vs-floor [ALTERNATIONS >= 1] [ITERATIONS >= 1]; the floor is expected at {floor}");
            return 2;
        }

        string loadBefore = LoadAverage();
        WarmUpJit();
        var floorNs = new Dictionary<string, List<Timing>>();
        var managedNs = new Dictionary<string, List<Timing>>();
        for (int a = 0; a < alternations; a++)
        {
            foreach (int gib in SlotGiB)
            {
                foreach (string mode in Modes)
                {
                    string key = $"{gib} GiB {mode}";
                    bool floorFirst = a % 2 == 0;
                    Timing f = floorFirst ? RunFloor(floor, gib, mode, iterations) : default;
                    Timing m = MeasureManaged(gib, mode == "dirty", iterations);
                    if (!floorFirst)
                    {
                        f = RunFloor(floor, gib, mode, iterations);
                    }

                    Add(floorNs, key, f);
                    Add(managedNs, key, m);
                    Console.Error.WriteLine($"alternation {a + 1}: {key}: floor {f.MedianNs} ns, managed {m.MedianNs} ns ({(double)m.MedianNs / f.MedianNs:0.00}x)");
                }
            }
        }

        Console.WriteLine($"{DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC, {Environment.ProcessorCount} CPUs, load average {loadBefore} before, {LoadAverage()} after");
        Console.WriteLine($"{alternations} alternations of {iterations} harvests each; medians of the per-run medians");
        Console.WriteLine();
        Console.WriteLine("| Slot | Mode | Managed | C floor | Managed / floor | Per-run ratios (median) | Minima, managed / floor |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (string key in floorNs.Keys)
        {
            long m = Median(managedNs[key].Select(t => t.MedianNs));
            long f = Median(floorNs[key].Select(t => t.MedianNs));
            double[] perRun = managedNs[key].Zip(floorNs[key], (x, y) => (double)x.MedianNs / y.MedianNs).ToArray();
            string ratios = string.Join(" ", perRun.Select(r => r.ToString("0.00", CultureInfo.InvariantCulture)));
            string perRunMedian = perRun.Order().ElementAt(perRun.Length / 2).ToString("0.00", CultureInfo.InvariantCulture);
            long mMin = managedNs[key].Min(t => t.MinNs);
            long fMin = floorNs[key].Min(t => t.MinNs);
            string[] parts = key.Split(' ');
            Console.WriteLine($"| {parts[0]} GiB | {parts[2]} | {Micro(m)} | {Micro(f)} | {Ratio(m, f)}× | {ratios} ({perRunMedian}×) | {Micro(mMin)} / {Micro(fMin)} = {Ratio(mMin, fMin)}× |");
        }

        return 0;
    }

    /// <summary>The managed harvest, measured exactly as the floor measures itself.</summary>
    private static Timing MeasureManaged(int gib, bool dirty, int iterations)
    {
        KvmSystem kvm = KvmSystem.Open();
        KvmVm vm = kvm.CreateVm();
        if (dirty)
        {
            vm.EnableManualDirtyLogProtect(initiallySet: true);
        }

        GuestMemoryLayout memory = GuestMemoryLayout.Create((ulong)gib << 30);
        MemorySlot slot = vm.CreateSlot(0, memory.Regions[0], dirtyLogging: true);
        var bitmap = new DirtyBitmap(slot.PageCount);
        long[] samples = new long[iterations];
        ulong expected = dirty ? slot.PageCount : 0;
        for (int i = -3; i < iterations; i++)
        {
            long t0 = Stopwatch.GetTimestamp();
            slot.GetDirtyLog(bitmap);
            ulong count = bitmap.Count();
            long t = Stopwatch.GetTimestamp() - t0;
            if (count != expected)
            {
                throw new InvalidOperationException($"The harvest counted {count} dirty pages, expected {expected}.");
            }

            if (i >= 0)
            {
                samples[i] = t;
            }
        }

        memory.Dispose();
        vm.Dispose();
        kvm.Dispose();
        return new Timing(Median(samples) * 1_000_000_000 / Stopwatch.Frequency, samples.Min() * 1_000_000_000 / Stopwatch.Frequency);
    }

    private static Timing RunFloor(string floor, int gib, string mode, int iterations)
    {
        var start = new ProcessStartInfo(floor)
        {
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(gib.ToString(CultureInfo.InvariantCulture));
        start.ArgumentList.Add(mode);
        start.ArgumentList.Add(iterations.ToString(CultureInfo.InvariantCulture));
        using Process process = Process.Start(start)!;
        string output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{floor} {gib} {mode} exited with {process.ExitCode}.");
        }

        string[] fields = output.Split(' ', StringSplitOptions.TrimEntries);
        return new Timing(Field(fields, "median_ns="), Field(fields, "min_ns="));
    }

    private static long Field(string[] fields, string name)
    {
        string field = fields.Single(p => p.StartsWith(name, StringComparison.Ordinal));
        return long.Parse(field[name.Length..], CultureInfo.InvariantCulture);
    }

    // Brings GetDirtyLog and the count loop to their final (tier-1) code before anything is
    // timed; the floor's code is optimised from its first call. Tier-up waits for a quiet spell
    // and compiles in the background, so a fixed number of calls is not enough on a busy (or a
    // one-CPU) machine: harvest and pause until the tier-up has come (more methods compiled than
    // after the first round) and then three rounds in a row compile nothing new.
    private static void WarmUpJit()
    {
        long first = -1;
        long compiled = -1;
        int quietRounds = 0;
        int round = 0;
        for (; round < 100 && (quietRounds < 3 || compiled == first); round++)
        {
            MeasureManaged(1, dirty: true, iterations: 200);
            MeasureManaged(16, dirty: false, iterations: 20);
            Thread.Sleep(100);
            long now = JitInfo.GetCompiledMethodCount();
            quietRounds = now == compiled ? quietRounds + 1 : 0;
            compiled = now;
            first = first < 0 ? now : first;
        }

        Console.Error.WriteLine($"warm-up: {round} rounds, {compiled} methods compiled");
    }

    private static void Add(Dictionary<string, List<Timing>> into, string key, Timing value)
    {
        if (!into.TryGetValue(key, out List<Timing>? list))
        {
            into[key] = list = [];
        }

        list.Add(value);
    }

    private static long Median(IEnumerable<long> values)
    {
        long[] sorted = values.Order().ToArray();
        return sorted[sorted.Length / 2];
    }

    private static string LoadAverage()
    {
        string[] fields = File.Exists("/proc/loadavg") ? File.ReadAllText("/proc/loadavg").Split(' ') : [];
        return fields.Length >= 3 ? string.Join(' ', fields[..3]) : "unknown";
    }

    private static string Ratio(long x, long y) => ((double)x / y).ToString("0.00", CultureInfo.InvariantCulture);

    private static string Micro(long ns) => (ns / 1000.0).ToString("0.00", CultureInfo.InvariantCulture) + " µs";

    /// <summary>One measurement: the median and the minimum nanoseconds per harvest.</summary>
    private readonly record struct Timing(long MedianNs, long MinNs);
}
