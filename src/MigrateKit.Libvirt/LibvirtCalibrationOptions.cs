using System;

namespace MigrateKit.Libvirt;

/// <summary>How <see cref="LibvirtMigrator.CalibrateAsync"/> probes a pair of hosts.</summary>
public sealed class LibvirtCalibrationOptions
{
    /// <summary>Where the probes' boot images and serial logs go; both hosts must see it at this path.</summary>
    /// <value>The default is <c>/var/tmp/migratekit-probe</c>.</value>
    public string ProbeDirectory { get; init; } = "/var/tmp/migratekit-probe";

    /// <summary>The working set of the small probe, which rewrites it page by page.</summary>
    /// <value>The default is 8 MiB.</value>
    public ulong SmallWorkingSet { get; init; } = 8UL << 20;

    /// <summary>The working set of the large probe.</summary>
    /// <value>The default is 64 MiB.</value>
    public ulong LargeWorkingSet { get; init; } = 64UL << 20;

    /// <summary>The migration stream's URI (libvirt's <c>migrate_uri</c>), as for the real migration.</summary>
    /// <value>The default is <see langword="null"/>: libvirt picks.</value>
    public string? MigrationUri { get; init; }

    /// <summary>How long each probe may take.</summary>
    /// <value>The default is 60 seconds.</value>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        ArgumentException.ThrowIfNullOrEmpty(ProbeDirectory);
        if (SmallWorkingSet % (1UL << 20) != 0 || LargeWorkingSet % (1UL << 20) != 0 || SmallWorkingSet == 0 || LargeWorkingSet < 2 * SmallWorkingSet || LargeWorkingSet > (1UL << 30))
        {
            throw new ArgumentException($"The probes' working sets must be whole MiB, the large one at least twice the small one and at most 1 GiB (got {SmallWorkingSet} and {LargeWorkingSet}).", nameof(LargeWorkingSet));
        }

        if (Timeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Timeout must be positive (got {Timeout}).", nameof(Timeout));
        }
    }
}
