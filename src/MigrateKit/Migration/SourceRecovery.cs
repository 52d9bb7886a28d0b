using System;

namespace MigrateKit.Migration;

/// <summary>
/// Holds what the engine did to the source (paused it, throttled it) so that it can always be
/// undone: after a failure or an abort the source runs on at full speed with every page the
/// destination may lack pending, unless the destination may already be running the VM; then the
/// source stays paused (unthrottled), so the VM never runs twice.
/// </summary>
internal sealed class SourceRecovery
{
    private readonly IMigrationSource _source;
    private readonly RegionSet _regions;

    internal SourceRecovery(IMigrationSource source, RegionSet regions)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(regions);
        _source = source;
        _regions = regions;
    }

    internal bool Paused { get; private set; }

    /// <summary>The throttle in force, percent.</summary>
    internal int ThrottlePercent { get; private set; }

    /// <summary>The strongest throttle applied so far, percent.</summary>
    internal int MaxThrottlePercent { get; private set; }

    /// <summary>Pauses the source; returns how long that took.</summary>
    internal TimeSpan Pause()
    {
        // Marked first: a pause that fails halfway is still undone.
        Paused = true;
        return _source.Pause();
    }

    internal void Resume()
    {
        _source.Resume();
        Paused = false;
    }

    /// <summary>Applies a throttle the policy decided.</summary>
    internal void Throttle(int percent)
    {
        ThrottlePercent = percent;
        MaxThrottlePercent = Math.Max(MaxThrottlePercent, percent);
        _source.SetThrottlePercent(percent);
    }

    /// <summary>Lets the guest run at full speed again, if it was throttled.</summary>
    internal void Unthrottle()
    {
        if (ThrottlePercent != 0)
        {
            ThrottlePercent = 0;
            _source.SetThrottlePercent(0);
        }
    }

    /// <summary>Whatever happened, the source runs on at full speed with every undelivered page pending.</summary>
    internal void LeaveRunning()
    {
        _regions.ReturnUndelivered();
        if (Paused)
        {
            Resume();
        }

        Unthrottle();
    }

    /// <summary>Why the last <see cref="LeaveAfterFailure"/> could not set the source running again, or null.</summary>
    internal Exception? ResumeFailure { get; private set; }

    /// <summary>
    /// After a failure: every undelivered page is pending again, and the source resumes at full
    /// speed unless <paramref name="destinationMayRunTheVm"/>; then it stays paused (unthrottled)
    /// and false is returned. A source whose resume (or unthrottle) throws stays as it is, and
    /// <see cref="ResumeFailure"/> says why: the caller reports it rather than lose the run's outcome.
    /// </summary>
    internal bool LeaveAfterFailure(bool destinationMayRunTheVm)
    {
        ResumeFailure = null;
        try
        {
            if (destinationMayRunTheVm)
            {
                _regions.ReturnUndelivered();
                Unthrottle();
                return false;
            }

            LeaveRunning();
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            ResumeFailure = ex;
        }

        return !destinationMayRunTheVm;
    }

    /// <summary>Why the source stays paused, after <paramref name="what"/>: what each side is known to have done, and how to find out the rest.</summary>
    internal static string UnknownOutcome(string what, Guid session, string? destination) =>
        $"{what}{(what.Contains("Commit was sent", StringComparison.Ordinal) ? "" : " after Commit was sent")}. The source is paused with its memory intact; the destination had checked the digests and was ready, " +
        "and may have started the VM, so the source stays paused to never run it twice. " +
        $"Ask the destination: migratekit recover --to {destination ?? "ADDRESS"} --session {session:N} (or MigrationRecovery.QueryAsync); " +
        "if it started the VM, discard the source; if it discarded it, resume the source.";
}
