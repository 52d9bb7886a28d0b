using System;
using System.Globalization;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// What a destination accepts: the largest VM a source may announce in its Hello and, optionally,
/// the exact shape it expects. The destination sets these, not the stream: a Hello beyond them
/// is refused with an Error frame before any memory is mapped or any per-page state allocated.
/// </summary>
/// <remarks>
/// Besides guest memory itself, a destination keeps per-page state bounded by
/// <see cref="MaxMemory"/>: one bit per page for the pages written, and 8 bytes per page for the
/// region digests, allocated as pages arrive (at most 1/512 of the memory, 128 MiB at the
/// default limit).
/// </remarks>
public sealed class MigrationReceiverOptions
{
    /// <summary>The default <see cref="MaxMemory"/>: 64 GiB.</summary>
    public const ulong DefaultMaxMemory = 64UL << 30;

    /// <summary>
    /// The largest total guest memory (the sum of the Hello's region sizes) accepted, in bytes; a
    /// positive multiple of the 4 KiB page size.
    /// </summary>
    /// <value>
    /// The default is 64 GiB (<see cref="DefaultMaxMemory"/>): twenty times the largest VM the
    /// CLI builds (3 GiB) and a common size for a VM on one host, while a Hello claiming terabytes is
    /// refused. A destination that runs larger VMs raises it.
    /// </value>
    public ulong MaxMemory { get; init; } = DefaultMaxMemory;

    /// <summary>The most memory regions accepted: 1 to 1024 (the protocol's own limit).</summary>
    /// <value>
    /// The default is 64: MigrateKit's VMs have one or two regions, and each region becomes a KVM
    /// memory slot (KVM allows 509 or more).
    /// </value>
    public int MaxRegions { get; init; } = 64;

    /// <summary>The most vCPUs accepted: at least 1.</summary>
    /// <value>The default is 64, beyond what MigrateKit's VMs run (one vCPU) yet below a host's typical core count.</value>
    public int MaxVcpus { get; init; } = 64;

    /// <summary>
    /// The exact total guest memory the destination expects, in bytes (a positive multiple of the page
    /// size, at most <see cref="MaxMemory"/>), or null to accept any size within the limit.
    /// </summary>
    /// <value>The default is <see langword="null"/>.</value>
    public ulong? ExpectedMemory { get; init; }

    /// <summary>The exact vCPU count the destination expects (1 to <see cref="MaxVcpus"/>), or null to accept any count within the limit.</summary>
    /// <value>The default is <see langword="null"/>.</value>
    public int? ExpectedVcpus { get; init; }

    /// <summary>
    /// How long a connected peer has to send its Hello. A peer that connects and says nothing is
    /// dropped after it, so it cannot hold a destination that serves one source at a time.
    /// </summary>
    /// <value>The default is 30 s, like the source's <see cref="MigrationOptions.ResponseTimeout"/>.</value>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long the source may send nothing at all once the migration runs; then the destination
    /// gives up. Any byte counts, so a large frame on a slow link keeps the connection alive while
    /// it arrives.
    /// </summary>
    /// <value>The default is 120 s: a round's harvest between frames takes milliseconds.</value>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromSeconds(120);

    /// <summary>
    /// How long a receiver that listens (<see cref="MigrationReceiver.ReceiveAsync(MigrationListener, System.Threading.CancellationToken)"/>)
    /// keeps a session whose connection was lost before the VM started: what it received, and the
    /// VM paused if it was ready. Within it the source may reconnect and continue (Resume) or ask
    /// what became of it (Query); after it the VM is released, never started. Zero keeps nothing.
    /// </summary>
    /// <value>The default is 60 s: enough for a source's retries with backoff over a link that comes back.</value>
    public TimeSpan ReconnectTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// Whether the destination asks the kernel for transparent huge pages (<c>MADV_HUGEPAGE</c>)
    /// on guest memory that holds nothing when the session starts, as QEMU does for guest RAM.
    /// Receiving into huge pages costs one fault per 2 MiB instead of one per 4 KiB page. But a
    /// huge page is backed whole once any of its pages receives data, so a guest with sparse data
    /// takes more memory at the destination than at the source. Memory the target already holds
    /// keeps its pages either way, and the host's own setting
    /// (<c>/sys/kernel/mm/transparent_hugepage/enabled</c> set to <c>never</c>) overrides this.
    /// </summary>
    /// <value>The default is <see langword="true"/>.</value>
    public bool HugePages { get; init; } = true;

    /// <summary>The clock of the handshake and idle timeouts; a test passes a fake one.</summary>
    /// <value>The default is <see cref="TimeProvider.System"/>.</value>
    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Checks the options and names the first problem.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (MaxMemory == 0 || MaxMemory % GuestMemoryLayout.PageSize != 0)
        {
            throw new ArgumentException($"MaxMemory must be a positive multiple of the {GuestMemoryLayout.PageSize}-byte page size (got {FormatSize(MaxMemory)}).", nameof(MaxMemory));
        }

        if (MaxRegions is < 1 or > MigrationProtocol.MaxRegions)
        {
            throw new ArgumentException($"MaxRegions must be 1 to {MigrationProtocol.MaxRegions} (got {MaxRegions}).", nameof(MaxRegions));
        }

        if (MaxVcpus < 1)
        {
            throw new ArgumentException($"MaxVcpus must be at least 1 (got {MaxVcpus}).", nameof(MaxVcpus));
        }

        if (ExpectedMemory is { } memory && (memory == 0 || memory % GuestMemoryLayout.PageSize != 0 || memory > MaxMemory))
        {
            throw new ArgumentException(
                $"ExpectedMemory must be a positive multiple of the {GuestMemoryLayout.PageSize}-byte page size and at most MaxMemory ({FormatSize(MaxMemory)}) (got {FormatSize(memory)}).",
                nameof(ExpectedMemory));
        }

        if (ExpectedVcpus is { } vcpus && (vcpus < 1 || vcpus > MaxVcpus))
        {
            throw new ArgumentException($"ExpectedVcpus must be 1 to MaxVcpus ({MaxVcpus}) (got {vcpus}).", nameof(ExpectedVcpus));
        }

        CheckTimeout(HandshakeTimeout, nameof(HandshakeTimeout));
        CheckTimeout(IdleTimeout, nameof(IdleTimeout));
        if (ReconnectTimeout != TimeSpan.Zero)
        {
            CheckTimeout(ReconnectTimeout, nameof(ReconnectTimeout));
        }

        ArgumentNullException.ThrowIfNull(TimeProvider, nameof(TimeProvider));
    }

    // Timers take at most uint.MaxValue - 1 ms; a longer timeout would fail at the first wait.
    private static void CheckTimeout(TimeSpan timeout, string name)
    {
        if (timeout <= TimeSpan.Zero || timeout > TimeSpan.FromMilliseconds(uint.MaxValue - 1))
        {
            throw new ArgumentException($"{name} must be positive and at most {uint.MaxValue - 1} ms (got {timeout}).", name);
        }
    }

    /// <summary>Refuses a Hello beyond these limits, before anything is built for it.</summary>
    /// <exception cref="MigrationLimitException">The Hello announces more, or another shape, than accepted.</exception>
    internal void Check(MigrationHello hello)
    {
        if (hello.Regions.Count > MaxRegions)
        {
            throw new MigrationLimitException(MigrationLimit.Regions, (ulong)hello.Regions.Count, (ulong)MaxRegions,
                $"Hello announces {hello.Regions.Count} memory regions; this destination accepts at most {MaxRegions}");
        }

        ulong memory = TotalMemory(hello);
        if (memory > MaxMemory)
        {
            throw new MigrationLimitException(MigrationLimit.Memory, memory, MaxMemory,
                $"Hello announces {FormatSize(memory)}; this destination accepts at most {FormatSize(MaxMemory)}");
        }

        if ((ulong)hello.VcpuCount > (ulong)MaxVcpus)
        {
            throw new MigrationLimitException(MigrationLimit.Vcpus, (ulong)hello.VcpuCount, (ulong)MaxVcpus,
                $"Hello announces {hello.VcpuCount} vCPUs; this destination accepts at most {MaxVcpus}");
        }

        if (ExpectedMemory is { } expected && memory != expected)
        {
            throw new MigrationLimitException(MigrationLimit.ExpectedMemory, memory, expected,
                $"Hello announces {FormatSize(memory)}; this destination expects exactly {FormatSize(expected)}");
        }

        if (ExpectedVcpus is { } vcpus && hello.VcpuCount != vcpus)
        {
            throw new MigrationLimitException(MigrationLimit.ExpectedVcpus, (ulong)hello.VcpuCount, (ulong)vcpus,
                $"Hello announces {hello.VcpuCount} vCPUs; this destination expects exactly {vcpus}");
        }
    }

    /// <summary>The sum of the region sizes, saturating: 1024 regions near 2⁶⁴ each must not wrap to a small total.</summary>
    internal static ulong TotalMemory(MigrationHello hello)
    {
        ulong total = 0;
        foreach (GuestMemoryRegionSpec region in hello.Regions)
        {
            total = region.Size > ulong.MaxValue - total ? ulong.MaxValue : total + region.Size;
        }

        return total;
    }

    /// <summary>A size in binary units, without a fraction when it is a whole number of them: <c>8 TiB</c>, <c>1.5 GiB</c>.</summary>
    internal static string FormatSize(ulong bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
        int i = 0;
        ulong whole = bytes;
        while (whole >= 1024 && whole % 1024 == 0 && i < units.Length - 1)
        {
            whole /= 1024;
            i++;
        }

        return whole < 1024 ? string.Create(CultureInfo.InvariantCulture, $"{whole} {units[i]}") : Units.FormatBytes(bytes);
    }
}
