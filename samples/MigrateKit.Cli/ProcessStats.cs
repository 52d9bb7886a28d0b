using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json.Serialization;
using System.Threading;

namespace MigrateKit.Cli;

/// <summary>
/// What this process holds, read from <c>/proc/self</c>: open file descriptors, threads, memory
/// mappings and resident memory. A leak of a VM, a tracker, a socket or a thread shows in one of them.
/// </summary>
/// <param name="Fds">Entries of <c>/proc/self/fd</c> (the listing's own descriptor included, the same every time).</param>
/// <param name="ThreadNames">
/// The threads by name (<c>/proc/self/task/*/comm</c>; one that ends while it is read is left
/// out): which kind of thread a change in <see cref="Threads"/> is (<c>.NET TP Worker</c>,
/// <c>hostvm worker</c>, <c>.NET Sockets</c>…).
/// </param>
/// <param name="Mappings">
/// Lines of <c>/proc/self/maps</c>. They move by a few without anything leaking: the GC and the
/// JIT commit and decommit inside their reservations (one mapping shows as several lines and
/// merges again), and thread and signal stacks land next to different neighbours; see
/// <see cref="SoakRun.MappingsNoise"/>.
/// </param>
/// <param name="RssBytes">Resident set size: the second field of <c>/proc/self/statm</c> times the page size.</param>
/// <param name="BusyPoolThreads">
/// Thread pool threads running a work item, the reading's own aside: a worker a migration left
/// blocked stays busy. Idle workers are the pool's capacity, which it retires on its own.
/// </param>
internal sealed record ProcessStats(
    [property: JsonPropertyName("fds")] int Fds,
    [property: JsonPropertyName("threadNames")] IReadOnlyDictionary<string, int> ThreadNames,
    [property: JsonPropertyName("mappings")] int Mappings,
    [property: JsonPropertyName("rssBytes")] long RssBytes,
    [property: JsonPropertyName("busyPoolThreads")] int BusyPoolThreads)
{
    /// <summary>
    /// Threads the runtime starts for its own work and ends on its own: the background GC's (a
    /// background collection starts it; it ends 20 s after the last one) and tiered compilation's.
    /// Whether one is there says when the GC or the JIT last ran, not what a migration left behind.
    /// </summary>
    internal static readonly IReadOnlySet<string> RuntimeOnDemand = new HashSet<string>([".NET BGC", ".NET Tiered Com"], StringComparer.Ordinal);

    /// <summary>The name of the thread pool's workers.</summary>
    internal const string PoolWorker = ".NET TP Worker";

    /// <summary>How long the figures a reading compares must stay as they are before it is taken.</summary>
    private static readonly TimeSpan QuietFor = TimeSpan.FromSeconds(3);

    /// <summary>The longest a settling wait takes: three times the pool's idle lifetime.</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(60);

    /// <summary>Entries of <c>/proc/self/task</c>: the threads of <see cref="ThreadNames"/>.</summary>
    [JsonPropertyName("threads")]
    public int Threads => ThreadNames.Values.Sum();

    /// <summary>Reads the figures now.</summary>
    internal static ProcessStats Take()
    {
        int fds = Directory.EnumerateFileSystemEntries("/proc/self/fd").Count();
        var names = new SortedDictionary<string, int>(StringComparer.Ordinal);
        foreach (string task in Directory.EnumerateDirectories("/proc/self/task"))
        {
            string name;
            try
            {
                name = File.ReadAllText(Path.Combine(task, "comm")).TrimEnd('\n');
            }
            catch (IOException)
            {
                // The thread ended between the listing and the read.
                continue;
            }

            names[name] = names.GetValueOrDefault(name) + 1;
        }

        int mappings = File.ReadLines("/proc/self/maps").Count();
        string[] statm = File.ReadAllText("/proc/self/statm").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        ThreadPool.GetMaxThreads(out int max, out _);
        ThreadPool.GetAvailableThreads(out int available, out _);
        int busy = max - available - (Thread.CurrentThread.IsThreadPoolThread ? 1 : 0);
        return new ProcessStats(fds, names, mappings, long.Parse(statm[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize, busy);
    }

    /// <summary>
    /// Reads the figures once the process is quiet: after a compacting collection that gives back
    /// what the heap does not use (finalizers run), once the threads by name (the pool's workers
    /// and the runtime's on-demand threads aside), the descriptors and the busy pool threads have
    /// not changed for <see cref="QuietFor"/>, at a moment the pool keeps no idle worker and none
    /// of <see cref="RuntimeOnDemand"/> runs.
    /// </summary>
    /// <remarks>
    /// Every thread holds four lines of the mappings (measured: readings one worker apart differed
    /// by four), so a reading with idle workers would not compare with one without. The pool
    /// retires a worker idle for 20 s (its default): the wait lasts up to that long after the last
    /// work, and <see cref="MaxWait"/> at most, after which a process that never quiets down (work
    /// every few seconds keeps a worker) is read as it is and the comparison shows it. Waiting
    /// instead for the threads to stay unchanged for longer than the pool's idle lifetime took
    /// 72–77 s a wait: tiered compilation's thread, started again by the wait's own code each
    /// time it ended, kept restarting it.
    /// </remarks>
    internal static ProcessStats Settle(CancellationToken ct)
    {
        // The reading itself first goes through tiered compilation, whose thread comes and goes
        // with it: done here, before the wait, it does not move the figures the wait ends with.
        for (int i = 0; i < 100; i++)
        {
            Take();
        }

        GC.Collect();
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Aggressive, blocking: true, compacting: true);
        long began = Stopwatch.GetTimestamp();
        long since = began;

        // A wait on a pool thread is one of the pool's workers itself (Settle never leaves its thread).
        int self = Thread.CurrentThread.IsThreadPoolThread ? 1 : 0;
        ProcessStats last = Take();
        while (true)
        {
            ct.WaitHandle.WaitOne(250);
            ct.ThrowIfCancellationRequested();
            ProcessStats now = Take();
            bool same = SameThreads(last, now) && now.Fds == last.Fds && now.BusyPoolThreads == last.BusyPoolThreads;
            bool transient = now.ThreadNames.Keys.Any(RuntimeOnDemand.Contains) ||
                now.ThreadNames.GetValueOrDefault(PoolWorker) > now.BusyPoolThreads + self;
            if (!same)
            {
                last = now;
                since = Stopwatch.GetTimestamp();
            }
            else if (!transient && Stopwatch.GetElapsedTime(since) >= QuietFor)
            {
                return now;
            }

            if (Stopwatch.GetElapsedTime(began) >= MaxWait)
            {
                return now;
            }
        }
    }

    /// <summary>
    /// Loads every assembly the loaded ones reference, until none is missing. The JIT loads them
    /// when it recompiles a hot method with optimizations (after 30 calls, and 30 more with dynamic
    /// PGO), which for code run once per migration happens dozens of migrations in: each load maps
    /// a file and keeps two descriptors. Loaded before the start figures, they are not counted as
    /// something the soak leaked.
    /// </summary>
    internal static void LoadReferencedAssemblies()
    {
        var seen = new System.Collections.Generic.HashSet<string>(StringComparer.Ordinal);
        bool loaded = true;
        while (loaded)
        {
            loaded = false;
            foreach (System.Reflection.Assembly assembly in AppDomain.CurrentDomain.GetAssemblies())
            {
                if (assembly.IsDynamic || !seen.Add(assembly.FullName ?? ""))
                {
                    continue;
                }

                foreach (System.Reflection.AssemblyName reference in assembly.GetReferencedAssemblies())
                {
                    try
                    {
                        System.Reflection.Assembly.Load(reference);
                        loaded = true;
                    }
                    catch (Exception ex) when (ex is FileNotFoundException or FileLoadException or BadImageFormatException)
                    {
                        // A reference this application does not ship (an optional dependency) is never loaded by its code either.
                    }
                }
            }
        }
    }

    /// <summary>
    /// The threads <paramref name="end"/> has that <paramref name="start"/> did not, by name
    /// ("hostvm worker +1"); empty when none was added. A thread left behind shows here; one that
    /// ended in between is no leak. The runtime's own on-demand threads (<see cref="RuntimeOnDemand"/>)
    /// are left out, and the pool's workers are compared by how many are busy ("busy pool threads +1"):
    /// a reading on a pool thread counts one more worker than one on the main thread.
    /// </summary>
    internal static IReadOnlyList<string> ThreadsAdded(ProcessStats start, ProcessStats end) =>
        [.. end.ThreadNames
            .Where(e => e.Value > start.ThreadNames.GetValueOrDefault(e.Key) && !Transient(e.Key))
            .Select(e => $"{e.Key} +{e.Value - start.ThreadNames.GetValueOrDefault(e.Key)}")
            .Concat(end.BusyPoolThreads > start.BusyPoolThreads ? [$"busy pool threads +{end.BusyPoolThreads - start.BusyPoolThreads}"] : [])];

    /// <summary>Whether <paramref name="a"/> and <paramref name="b"/> have the same threads by name, the pool's workers and the runtime's on-demand threads aside.</summary>
    private static bool SameThreads(ProcessStats a, ProcessStats b) =>
        a.ThreadNames.Where(e => !Transient(e.Key)).All(e => b.ThreadNames.GetValueOrDefault(e.Key) == e.Value) &&
        b.ThreadNames.Where(e => !Transient(e.Key)).All(e => a.ThreadNames.ContainsKey(e.Key));

    private static bool Transient(string name) => RuntimeOnDemand.Contains(name) || name == PoolWorker;

    /// <summary>"184 fds, 11 threads (0 pool busy), 909 mappings, 127.4 MiB RSS".</summary>
    public override string ToString() => $"{Fds} fds, {Threads} threads ({BusyPoolThreads} pool busy), {Mappings} mappings, {Units.FormatBytes((ulong)RssBytes)} RSS";
}
