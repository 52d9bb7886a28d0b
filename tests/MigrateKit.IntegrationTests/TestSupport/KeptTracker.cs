using System.Collections.Generic;
using MigrateKit.Memory;
using MigrateKit.Tracking;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// The VM's tracker, kept running for the test: Stop and Dispose wait for <see cref="Release"/>.
/// It stands for a caller that keeps the tracker for a resume, so after a failed migration the
/// test can still harvest what the guest wrote since the engine's last harvest.
/// </summary>
internal sealed class KeptTracker : IDirtyPageTracker
{
    private readonly IDirtyPageTracker _inner;

    internal KeptTracker(IDirtyPageTracker inner)
    {
        _inner = inner;
    }

    public IReadOnlyList<GuestMemoryRegion> Regions => _inner.Regions;

    public bool IsTracking => _inner.IsTracking;

    public string Kind => _inner.Kind;

    /// <summary>Whether the engine asked to stop tracking.</summary>
    internal bool StopRequested { get; private set; }

    public void Start() => _inner.Start();

    public HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into) => _inner.Harvest(into);

    public HarvestResult HarvestFinal(IReadOnlyList<DirtyBitmap> into) => _inner.HarvestFinal(into);

    public bool FinalHarvestRearms => _inner.FinalHarvestRearms;

    public void Stop() => StopRequested = true;

    public void Dispose() => StopRequested = true;

    /// <summary>Stops and releases the tracker for good.</summary>
    internal void Release() => _inner.Dispose();
}
