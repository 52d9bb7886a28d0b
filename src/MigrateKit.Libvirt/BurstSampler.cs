using System;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>
/// Polls a rate-limited migration job back to back for a short while and times the bursts of its byte
/// counter (<see cref="BurstSpeedMeter"/>): the stop-and-copy speed, learned from the migration itself
/// without a probe guest.
/// </summary>
internal static class BurstSampler
{
    /// <summary>How long the job is polled back to back: a few of QEMU's 100 ms rate-limit windows.</summary>
    internal static readonly TimeSpan Window = TimeSpan.FromMilliseconds(600);

    /// <summary>The most polls in one sampling, whatever the clock says.</summary>
    internal const int MaxPolls = 2000;

    /// <summary>
    /// Samples the job's bursts; returns the speed in bytes per second, or null when no burst could be
    /// timed (the job ended, entered the stop-and-copy, or polls were too slow to see inside a burst).
    /// </summary>
    /// <param name="source">The source host.</param>
    /// <param name="domain">The migrating domain.</param>
    /// <param name="time">The migration's clock.</param>
    /// <param name="migrate">The migrate call: sampling stops when it returns.</param>
    internal static double? Sample(ResilientHost source, string domain, TimeProvider time, Task migrate)
    {
        var meter = new BurstSpeedMeter();
        long started = time.GetTimestamp();
        for (int poll = 0; poll < MaxPolls && time.GetElapsedTime(started) < Window && !migrate.IsCompleted; poll++)
        {
            long before = time.GetTimestamp();
            JobStats stats;
            try
            {
                stats = source.Run(h => h.GetJobStats(domain, completed: false), CancellationToken.None);
            }
            catch (LibvirtException)
            {
                // The follower's next poll deals with a lost job or connection.
                break;
            }

            if (stats.Type is not (DomainJobType.Bounded or DomainJobType.Unbounded) || stats.MemoryRemaining == 0 || stats.DataProcessed is not { } bytes)
            {
                break;
            }

            // QEMU read its counter somewhere inside the call: its middle is the best guess.
            TimeSpan call = time.GetElapsedTime(before);
            meter.Add(time.GetElapsedTime(started) - (call / 2), call, bytes);
        }

        return meter.BytesPerSecond;
    }
}
