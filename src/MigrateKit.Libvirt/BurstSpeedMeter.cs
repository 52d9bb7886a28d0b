using System;

namespace MigrateKit.Libvirt;

/// <summary>
/// The speed of the link between two hosts, seen through QEMU's rate limiter. Under a limit, QEMU
/// sends each 100 ms window's allowance as fast as it can and then sleeps: polled back to back, its
/// byte counter climbs in bursts at the speed the stop-and-copy will reach (where QEMU lifts the limit)
/// and stands still in between. A burst is timed from the first poll that sees it to the last poll
/// before the one that sees it end (both inside it; when a burst started or stopped between two polls
/// is unknown, so the edges are left out). Each poll's moment is the middle of its call, unsure by half
/// the call's duration: a burst counts at the slowest speed its polls allow (its bytes over its length
/// plus that doubt), and the fastest burst counts, because on a busy host a poll or QEMU's sender may
/// be descheduled inside a burst, which only ever makes it look slower.
/// </summary>
internal sealed class BurstSpeedMeter
{
    /// <summary>Bursts with less than this inside them are too short to time.</summary>
    internal const ulong MinimumBurstBytes = 1UL << 20;

    private Poll _last;
    private bool _started;
    private bool _inBurst;
    private Poll _first;
    private Poll _latest;
    private Poll _inside;

    /// <summary>Bursts timed so far.</summary>
    internal int Bursts { get; private set; }

    /// <summary>The speed of the fastest burst timed (at the slowest its polls allow), bytes per second; null before one was.</summary>
    internal double? BytesPerSecond { get; private set; }

    /// <summary>Adds a poll: QEMU's byte counter <paramref name="bytes"/> as of <paramref name="at"/>, read by a call that took <paramref name="call"/>.</summary>
    internal void Add(TimeSpan at, TimeSpan call, ulong bytes)
    {
        var poll = new Poll(at, call, bytes);
        if (!_started)
        {
            _started = true;
            _last = poll;
            return;
        }

        if (bytes > _last.Bytes && at > _last.At)
        {
            if (!_inBurst)
            {
                // The first poll that sees the burst: it began at some point since the previous one.
                _inBurst = true;
                _first = poll;
                _latest = poll;
            }

            // The previous increase was inside the burst: this poll saw it go on.
            _inside = _latest;
            _latest = poll;
        }
        else if (bytes == _last.Bytes && _inBurst)
        {
            EndBurst();
        }

        _last = poll;
    }

    private void EndBurst()
    {
        _inBurst = false;
        ulong bytes = _inside.Bytes - _first.Bytes;
        TimeSpan length = _inside.At - _first.At;
        TimeSpan unsure = (_inside.Call + _first.Call) / 2;
        if (bytes < MinimumBurstBytes || length <= TimeSpan.Zero)
        {
            return;
        }

        Bursts++;
        double speed = bytes / (length + unsure).TotalSeconds;
        BytesPerSecond = Math.Max(BytesPerSecond ?? 0, speed);
    }

    private readonly record struct Poll(TimeSpan At, TimeSpan Call, ulong Bytes);
}
