using System;

namespace MigrateKit.Migration;

/// <summary>The switchover priced from the measured costs: its transfer (the sender's work, the link, the destination's work per page) and the chunks its final harvest re-protects.</summary>
internal sealed partial class TransferMeasurements
{
    /// <summary>
    /// The switchover's transfer of the pending data pages, <paramref name="cheapPages"/> cheap
    /// and <paramref name="otherPages"/> not (<paramref name="wireBytes"/> on the wire), and of
    /// what the guest writes until its vCPUs stop: the sender builds each page (a cheap one at
    /// its own price), the link carries the bytes (a limiter's burst at once), and the destination
    /// applies them (<see cref="TransferSeconds"/>). Returns the transfer after the burst's credit
    /// and that credit; null until a round measured the destination's work (the rounds' rate then
    /// prices the pending bytes, and a cheap page's bytes count that work at its build's price).
    /// </summary>
    private (TimeSpan? Transfer, TimeSpan BurstCredit) SwitchoverTransfer(double cheapPages, double otherPages, double wireBytes, TimeSpan since, ulong burstBytes)
    {
        if (!DestinationMeasured)
        {
            return (null, TimeSpan.Zero);
        }

        // As the estimator counts them: any page while the vCPUs stop, warm ones since the harvest.
        double duringPause = _dirtyRate.LastPagesPerSecond * Estimator.PauseCost.TotalSeconds;
        double sinceHarvest = _warmRate.LastPagesPerSecond * since.TotalSeconds;
        double pages = cheapPages + otherPages + duringPause + sinceHarvest;
        double wire = wireBytes + (duringPause * WireBlend(_cheapShareOfDirty)) + (sinceHarvest * WireBlend(_cheapShareOfWarm));
        if (pages <= 0)
        {
            return (TimeSpan.Zero, TimeSpan.Zero);
        }

        double cheap = cheapPages + (duringPause * _cheapShareOfDirty) + (sinceHarvest * _cheapShareOfWarm);
        PageCosts costs = Costs(SwitchoverSecondsPerPage);
        double credit = Math.Min(burstBytes, wire) / costs.Link;
        return (TimeSpan.FromSeconds(TransferSeconds(pages, wire, BuildSeconds(cheap, pages - cheap, costs.Build), costs, credit)), TimeSpan.FromSeconds(credit));
    }

    /// <summary>
    /// The time to move <paramref name="pages"/> data pages of <paramref name="wire"/> bytes,
    /// <paramref name="build"/> seconds of the sender's work, at <paramref name="costs"/>, less
    /// <paramref name="credit"/> of the link's time: the sender builds each flush while the
    /// destination applies the one before, so the destination's work adds to the rest for the
    /// last flush's pages only, or sets the pace where it is the slower.
    /// </summary>
    private static double TransferSeconds(double pages, double wire, double build, PageCosts costs, double credit = 0)
    {
        double sending = build + (wire / costs.Link) - credit;
        double lastFlush = Math.Min(pages, RoundSender.FlushThreshold / Math.Max(1, wire / pages));
        return Math.Max(sending, costs.Apply * (pages - lastFlush)) + (costs.Apply * lastFlush);
    }

    /// <summary>The costs per page with the sender's work on a data page at <paramref name="build"/> seconds (a round's or the switchover's).</summary>
    private PageCosts Costs(double build) => new(build, ApplySecondsPerPage, LinkBandwidth());

    /// <summary>The wire bytes of a dirtied page, <paramref name="cheapShare"/> of them small deltas.</summary>
    private double WireBlend(double cheapShare) => (cheapShare * _cheapPageBytes) + ((1 - cheapShare) * _otherPageBytes);

    /// <summary>The sender's work on <paramref name="cheapPages"/> cheap pages and <paramref name="otherPages"/> others at <paramref name="other"/> seconds each, in seconds.</summary>
    private double BuildSeconds(double cheapPages, double otherPages, double other) => (cheapPages * CheapSecondsPerPage) + (otherPages * other);

    /// <summary>
    /// The chunks the final harvest should find dirty after <paramref name="since"/> of writes:
    /// the pages the guest dirties in that time, each in a chunk of its own at most, and no more
    /// chunks than the last harvest's, scaled up where fewer pages went into it. A random writer's
    /// pages spread over every chunk it touches; a sequential one's fill one chunk after another.
    /// </summary>
    private double HarvestChunks(TimeSpan since)
    {
        double pages = _dirtyRate.LastPagesPerSecond * since.TotalSeconds;
        return _lastHarvestPages == 0 ? 0 : Math.Min(pages, _lastHarvestChunks * Math.Max(1, pages / _lastHarvestPages));
    }

    private double Blend(double cheapShare) => WireBlend(cheapShare) + (BuildSeconds(cheapShare, 1 - cheapShare, CpuSecondsPerPage) * Bandwidth());

    /// <summary>Seconds per page of the sender's and the destination's work, and the link's bytes per second.</summary>
    private readonly record struct PageCosts(double Build, double Apply, double Link);

    /// <summary>Pages built, the seconds it took, and of those the first writes into the sent-page cache.</summary>
    private readonly record struct BuildTotals(double Pages, double Seconds, double FirstWrites = 0)
    {
        internal double PerPage => Seconds / Pages;

        internal double PerPageWithoutFirstWrites => Math.Max(0, Seconds - FirstWrites) / Pages;

        internal BuildTotals Add(ulong pages, double seconds, double firstWrites = 0) => new(Pages + pages, Seconds + seconds, FirstWrites + firstWrites);

        internal BuildTotals Halved() => new(Pages / 2, Seconds / 2, FirstWrites / 2);
    }
}
