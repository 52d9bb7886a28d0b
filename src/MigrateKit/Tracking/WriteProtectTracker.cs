using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Linq;
using System.Runtime.CompilerServices;
using MigrateKit.Interop;
using MigrateKit.Memory;

namespace MigrateKit.Tracking;

/// <summary>A dirty-tracking call into the kernel failed.</summary>
public sealed class DirtyTrackingException : LinuxException
{
    /// <summary>Creates the exception.</summary>
    /// <param name="operation">What was attempted.</param>
    /// <param name="errno">The positive errno value.</param>
    public DirtyTrackingException(string operation, int errno)
        : base(operation, errno)
    {
    }
}

/// <summary>
/// Tracks writes to guest memory that no KVM guest backs (a VMM's own threads, an emulator, a
/// process's heap) with userfaultfd write-protection in asynchronous mode and the
/// <c>PAGEMAP_SCAN</c> ioctl (Linux 6.9+): a write to a protected page is resolved by the kernel
/// without a fault message and marks the page written; a harvest reports the written pages and
/// protects them again in one atomic page-table walk. Exact, like KVM's dirty log, including
/// the first write to a page never touched before.
/// </summary>
public sealed class WriteProtectTracker : IDirtyPageTracker
{
    private readonly GuestMemoryRegion[] _regions;
    private readonly object _gate = new();
    private SafeFdHandle? _uffd;
    private SafeFdHandle? _pagemap;

    /// <summary>Tracks the given regions.</summary>
    /// <exception cref="ArgumentException">No regions.</exception>
    public WriteProtectTracker(IEnumerable<GuestMemoryRegion> regions)
    {
        ArgumentNullException.ThrowIfNull(regions);
        _regions = regions.ToArray();
        if (_regions.Length == 0)
        {
            throw new ArgumentException("Nothing to track: no regions given.", nameof(regions));
        }
    }

    /// <summary>Tracks every region of a layout.</summary>
    public WriteProtectTracker(GuestMemoryLayout memory)
        : this(memory?.Regions ?? throw new ArgumentNullException(nameof(memory)))
    {
    }

    /// <summary>
    /// Whether this kernel supports asynchronous write-protection (checked once by opening a
    /// userfaultfd); when false, <see cref="Start"/> throws and <see cref="UnsupportedReason"/> says why.
    /// </summary>
    public static bool IsSupported => Probe.Value is null;

    /// <summary>Why <see cref="IsSupported"/> is false, or null.</summary>
    public static string? UnsupportedReason => Probe.Value;

    private static readonly Lazy<string?> Probe = new(() =>
    {
        // 6.7 and 6.8 lose written bits in PAGEMAP_SCAN's re-protect (CVE-2024-36943, fixed in 6.9).
        Version kernel = Environment.OSVersion.Version;
        if (kernel < new Version(6, 9))
        {
            return $"exact write tracking needs Linux 6.9 or later (this is {kernel}): earlier PAGEMAP_SCAN can lose written bits (CVE-2024-36943).";
        }

        int r = NativeMethods.WpOpen(out int uffd, out int pagemap);
        if (r < 0)
        {
            return $"userfaultfd with asynchronous write-protection is unavailable: {Errno.Describe(-r)} ({Errno.Name(-r)}); it needs Linux 6.9+ with CONFIG_USERFAULTFD and PTE markers, and vm.unprivileged_userfaultfd=1 or CAP_SYS_PTRACE.";
        }

        NativeMethods.Close(uffd);
        NativeMethods.Close(pagemap);
        return null;
    });

    /// <inheritdoc/>
    public IReadOnlyList<GuestMemoryRegion> Regions => _regions;

    /// <inheritdoc/>
    public bool IsTracking { get; private set; }

    /// <inheritdoc/>
    public string Kind => "write-protect";

    /// <inheritdoc/>
    /// <exception cref="DirtyTrackingException">The kernel refused (see <see cref="UnsupportedReason"/>).</exception>
    public void Start()
    {
        lock (_gate)
        {
            if (IsTracking)
            {
                return;
            }

            int r = NativeMethods.WpOpen(out int uffd, out int pagemap);
            if (r < 0)
            {
                throw new DirtyTrackingException("userfaultfd(UFFD_FEATURE_WP_ASYNC)", -r);
            }

            _uffd = new SafeFdHandle(uffd);
            _pagemap = new SafeFdHandle(pagemap);
            try
            {
                foreach (GuestMemoryRegion region in _regions)
                {
                    using var lease = new HandleLease(region.Mapping);
                    r = NativeMethods.WpRegister(uffd, region.Mapping.DangerousGetHandle(), region.Size);
                    if (r < 0)
                    {
                        throw new DirtyTrackingException($"UFFDIO_REGISTER/WRITEPROTECT (region {region.Index})", -r);
                    }
                }
            }
            catch
            {
                // Closing the userfaultfd unregisters whatever was registered.
                Release();
                throw;
            }

            IsTracking = true;
        }
    }

    /// <inheritdoc/>
    public HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into) => Scan(into, reprotect: true);

    /// <summary>
    /// Reports the written pages without protecting them again: a walk that only reads. Protecting
    /// them costs a TLB flush for every 2 MiB that held one: of 1 GiB with 200 scattered pages
    /// written, a harvest took 7.3 ms and this 0.64 ms (<c>WriteProtectHarvestBenchmarks</c>).
    /// </summary>
    /// <inheritdoc/>
    public HarvestResult HarvestFinal(IReadOnlyList<DirtyBitmap> into) => Scan(into, reprotect: false);

    /// <inheritdoc/>
    public bool FinalHarvestRearms => false;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private unsafe HarvestResult Scan(IReadOnlyList<DirtyBitmap> into, bool reprotect)
    {
        HarvestTargets.Check(into, _regions);
        long start = Stopwatch.GetTimestamp();
        ulong total = 0;
        lock (_gate)
        {
            ThrowIfNotTracking();
            for (int i = 0; i < _regions.Length; i++)
            {
                GuestMemoryRegion region = _regions[i];
                using var lease = new HandleLease(region.Mapping);
                fixed (ulong* words = into[i].Words)
                {
                    int r = NativeMethods.WpHarvest(_pagemap!.Fd, region.Mapping.DangerousGetHandle(), region.Size, reprotect ? 1 : 0, words, out ulong pages);
                    if (r < 0)
                    {
                        throw new DirtyTrackingException($"PAGEMAP_SCAN (region {region.Index})", -r);
                    }

                    total += pages;
                }
            }
        }

        return new HarvestResult(total, Stopwatch.GetElapsedTime(start));
    }

    /// <inheritdoc/>
    public void Stop()
    {
        lock (_gate)
        {
            if (!IsTracking)
            {
                return;
            }

            foreach (GuestMemoryRegion region in _regions)
            {
                if (!region.Mapping.IsClosed)
                {
                    using var lease = new HandleLease(region.Mapping);
                    NativeMethods.WpUnregister(_uffd!.Fd, region.Mapping.DangerousGetHandle(), region.Size);
                }
            }

            Release();
            IsTracking = false;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => Stop();

    private void Release()
    {
        _uffd?.Dispose();
        _pagemap?.Dispose();
        _uffd = null;
        _pagemap = null;
    }

    private void ThrowIfNotTracking()
    {
        if (!IsTracking)
        {
            throw new InvalidOperationException("Tracking has not been started.");
        }
    }
}
