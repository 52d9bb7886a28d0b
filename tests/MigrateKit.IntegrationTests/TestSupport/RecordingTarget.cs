using System;
using System.IO.Hashing;
using System.Linq;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>
/// A destination VM that remembers what became of it: whether the receiver started it, whether it
/// released it, and what its memory held at that moment (one hash per page), so a test can
/// compare it with the source after the VM itself is gone.
/// </summary>
internal sealed class RecordingTarget : IMigrationTarget
{
    internal RecordingTarget(IWorkloadVm vm)
    {
        Vm = vm;
    }

    /// <summary>The VM the receiver fills.</summary>
    internal IWorkloadVm Vm { get; }

    internal bool Started { get; private set; }

    internal bool Disposed { get; private set; }

    /// <summary>Each region's page hashes when the receiver disposed the VM; null before.</summary>
    internal ulong[][]? PagesAtDisposal { get; private set; }

    public GuestMemoryLayout Memory => Vm.Memory;

    public TimeSpan EstimateResumeCost() => Vm.EstimateResumeCost();

    public void RestoreDeviceState(ReadOnlySpan<byte> state) => Vm.RestoreDeviceState(state);

    public void Start()
    {
        Started = true;
        Vm.Start();
    }

    public void Dispose()
    {
        if (!Disposed)
        {
            PagesAtDisposal = HashPages(Vm.Memory);
            Disposed = true;
            Vm.Dispose();
        }
    }

    /// <summary>One XXH3 hash per page of every region.</summary>
    internal static ulong[][] HashPages(GuestMemoryLayout memory) => memory.Regions
        .Select(r =>
        {
            ulong[] hashes = new ulong[r.PageCount];
            for (ulong p = 0; p < r.PageCount; p++)
            {
                hashes[p] = XxHash3.HashToUInt64(r.GetPage(p));
            }

            return hashes;
        })
        .ToArray();
}
