using System.Threading.Tasks;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>A fault armed on a <see cref="FaultProxy"/>: what it does, when, and whether it fired.</summary>
internal sealed class ArmedFault
{
    private readonly TaskCompletionSource _fired = new(TaskCreationOptions.RunContinuationsAsynchronously);

    internal ArmedFault(Fault fault, Trigger trigger)
    {
        Fault = fault;
        Trigger = trigger;
    }

    internal Fault Fault { get; }

    internal Trigger Trigger { get; }

    /// <summary>Completes when the fault fires.</summary>
    internal Task Fired => _fired.Task;

    internal bool HasFired => _fired.Task.IsCompleted;

    /// <summary>The step of the trigger being matched (the proxy's lock guards it).</summary>
    internal int Step { get; set; }

    /// <summary>Frames of the current step's type seen since the step became active (the proxy's lock guards it).</summary>
    internal int Seen { get; set; }

    internal void MarkFired() => _fired.TrySetResult();
}
