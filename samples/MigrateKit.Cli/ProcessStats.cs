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
internal sealed record ProcessStats(
    [property: JsonPropertyName("fds")] int Fds,
    [property: JsonPropertyName("threadNames")] IReadOnlyDictionary<string, int> ThreadNames,
    [property: JsonPropertyName("mappings")] int Mappings,
    [property: JsonPropertyName("rssBytes")] long RssBytes)
{
    /// <summary>
    /// Threads the runtime starts for its own work and ends on its own: the background GC's (a
    /// background collection starts it; it ends 20 s after the last one) and tiered compilation's.
    /// Whether one is there says when the GC or the JIT last ran, not what a migration left behind.
    /// </summary>
    internal static readonly IReadOnlySet<string> RuntimeOnDemand = new HashSet<string>([".NET BGC", ".NET Tiered Com"], StringComparer.Ordinal);

    /// <summary>The thread pool retires a worker idle for 20 s (its default); a margin on top.</summary>
    private static readonly TimeSpan IdleWorkerLifetime = TimeSpan.FromSeconds(22);

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
        return new ProcessStats(fds, names, mappings, long.Parse(statm[1], CultureInfo.InvariantCulture) * Environment.SystemPageSize);
    }

    /// <summary>
    /// Reads the figures once the process is quiet: after a compacting collection that gives back
    /// what the heap does not use (finalizers run), and once the threads, by name, have not changed
    /// for longer than the thread pool keeps an idle worker, so that workers it added for a burst of
    /// blocking calls have retired (a thread that never ends does not retire and still counts).
    /// Names, not the count: one thread ending as another starts leaves the count as it was.
    /// </summary>
    /// <exception cref="OperationCanceledException"><paramref name="ct"/> was cancelled.</exception>
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
        long since = Stopwatch.GetTimestamp();
        ProcessStats last = Take();
        while (Stopwatch.GetElapsedTime(since) < IdleWorkerLifetime)
        {
            ct.WaitHandle.WaitOne(250);
            ct.ThrowIfCancellationRequested();
            ProcessStats now = Take();
            if (!SameThreads(last, now))
            {
                last = now;
                since = Stopwatch.GetTimestamp();
            }
        }

        return Take();
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
    /// are left out.
    /// </summary>
    internal static IReadOnlyList<string> ThreadsAdded(ProcessStats start, ProcessStats end) =>
        [.. end.ThreadNames
            .Where(e => e.Value > start.ThreadNames.GetValueOrDefault(e.Key) && !RuntimeOnDemand.Contains(e.Key))
            .Select(e => $"{e.Key} +{e.Value - start.ThreadNames.GetValueOrDefault(e.Key)}")];

    private static bool SameThreads(ProcessStats a, ProcessStats b) =>
        a.ThreadNames.Count == b.ThreadNames.Count && a.ThreadNames.All(e => b.ThreadNames.GetValueOrDefault(e.Key) == e.Value);

    /// <summary>"184 fds, 11 threads, 909 mappings, 127.4 MiB RSS".</summary>
    public override string ToString() => $"{Fds} fds, {Threads} threads, {Mappings} mappings, {Units.FormatBytes((ulong)RssBytes)} RSS";
}
