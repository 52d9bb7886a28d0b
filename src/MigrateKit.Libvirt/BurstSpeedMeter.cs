using System;

namespace MigrateKit.Libvirt;

/// <summary>
/// The speed of the link between two hosts, seen through QEMU's rate limiter. Under a limit, QEMU
/// sends each 100 ms window's allowance as fast as it can and then sleeps: polled back to back, its
/// byte counter climbs in bursts at the speed the stop-and-copy will reach (where QEMU lifts the limit)
/// and stands still in between. The speed is the bytes over the time between the first poll that sees
/// a burst and the last poll before the one that sees it end (both inside it; when a burst started or
/// stopped between two polls is unknown, so the edges are left out), summed over the bursts seen.
/// </summary>
internal sealed class BurstSpeedMeter
{
    /// <summary>Bursts with less than this inside them are too short to time.</summary>
    internal const ulong MinimumBurstBytes = 1UL << 20;

    private bool _started;
    private TimeSpan _lastAt;
    private ulong _lastBytes;
    private bool _inBurst;
    private TimeSpan _burstFirstAt;
    private ulong _burstFirstBytes;
    private TimeSpan _burstLastAt;
    private ulong _burstLastBytes;
    private TimeSpan _burstInsideAt;
    private ulong _burstInsideBytes;
    private double _bytes;
    private double _seconds;

    /// <summary>Bursts timed so far.</summary>
    internal int Bursts { get; private set; }

    /// <summary>The speed in bytes per second, or null before a burst was timed.</summary>
    internal double? BytesPerSecond => Bursts > 0 && _seconds > 0 ? _bytes / _seconds : null;

    /// <summary>Adds a poll: QEMU's byte counter <paramref name="bytes"/> as of <paramref name="at"/>.</summary>
    internal void Add(TimeSpan at, ulong bytes)
    {
        if (!_started)
        {
            _started = true;
            (_lastAt, _lastBytes) = (at, bytes);
            return;
        }

        if (bytes > _lastBytes && at > _lastAt)
        {
            if (!_inBurst)
            {
                // The first poll that sees the burst: it began at some point since the previous one.
                _inBurst = true;
                (_burstFirstAt, _burstFirstBytes) = (at, bytes);
                (_burstLastAt, _burstLastBytes) = (at, bytes);
            }

            // The previous increase was inside the burst: this poll saw it go on.
            (_burstInsideAt, _burstInsideBytes) = (_burstLastAt, _burstLastBytes);
            (_burstLastAt, _burstLastBytes) = (at, bytes);
        }
        else if (bytes == _lastBytes && _inBurst)
        {
            EndBurst();
        }

        (_lastAt, _lastBytes) = (at, bytes);
    }

    private void EndBurst()
    {
        _inBurst = false;
        ulong inside = _burstInsideBytes - _burstFirstBytes;
        double seconds = (_burstInsideAt - _burstFirstAt).TotalSeconds;
        if (inside >= MinimumBurstBytes && seconds > 0)
        {
            _bytes += inside;
            _seconds += seconds;
            Bursts++;
        }
    }
}
