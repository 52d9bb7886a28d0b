namespace MigrateKit.Migration;

/// <summary>Whether a planned pre-copy reaches a switchover that fits the downtime limit.</summary>
public enum PlanVerdict
{
    /// <summary>It converges with the guest at full speed (the policy may still throttle it, to converge sooner).</summary>
    Converges,

    /// <summary>It converges only once the policy throttles the guest.</summary>
    ConvergesWithThrottle,

    /// <summary>The policy gives up: the guest dirties memory faster than the link can take it, even throttled, or a limit (rounds, bytes, deadline) is reached first.</summary>
    DoesNotConverge,
}
