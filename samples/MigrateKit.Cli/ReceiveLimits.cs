using System;
using System.Collections.Generic;
using System.CommandLine;
using MigrateKit.Migration;

namespace MigrateKit.Cli;

/// <summary>
/// What <c>receive</c> accepts, set on the destination: the kind of VM it builds and the largest
/// (or the exact) VM a source may announce. The source's Hello never chooses either.
/// </summary>
internal sealed class ReceiveLimits
{
    internal Option<string> Vm { get; } = new("--vm")
    {
        Description = "The VM to build: microvm (KVM), hostvm (no KVM) or auto (microvm when /dev/kvm can be opened). Must match the source's --vm.",
        DefaultValueFactory = _ => "auto",
    };

    internal Option<string> MaxMemory { get; } = new("--max-memory")
    {
        Description = "The largest guest memory accepted, e.g. 8GiB, or auto: this host's memory (or its container's limit), at most 64 GiB. A larger Hello is refused before anything is allocated.",
        DefaultValueFactory = _ => "auto",
    };

    internal Option<string?> ExpectMemory { get; } = new("--expect-memory") { Description = "Accept only a VM of exactly this much memory, e.g. 1GiB." };

    internal Option<int?> MaxRegions { get; } = new("--max-regions") { Description = "The most memory regions a source may announce (default 64)." };

    internal Option<int?> MaxVcpus { get; } = new("--max-vcpus") { Description = "The most vCPUs a source may announce (default 64, or --expect-vcpus when that is more)." };

    internal Option<int?> ExpectVcpus { get; } = new("--expect-vcpus") { Description = "Accept only a VM with exactly this many vCPUs." };

    internal Option<string> ReconnectTimeout { get; } = new("--reconnect-timeout")
    {
        Description = "How long a migration whose link was lost waits for its source to reconnect (and answers 'recover'), e.g. 60s; 0s keeps nothing.",
        DefaultValueFactory = _ => "60s",
    };

    internal Option<bool> NoHugePages { get; } = new("--no-huge-pages")
    {
        Description = "Back the VM's memory with 4 KiB pages only: a sparse guest then takes no more memory here than its data, at one fault per page.",
    };

    internal void AddTo(Command command)
    {
        command.Options.Add(Vm);
        command.Options.Add(MaxMemory);
        command.Options.Add(ExpectMemory);
        command.Options.Add(ExpectVcpus);
        command.Options.Add(MaxRegions);
        command.Options.Add(MaxVcpus);
        command.Options.Add(ReconnectTimeout);
        command.Options.Add(NoHugePages);
    }

    /// <summary>Reads and checks the options; a bad value is a <see cref="FormatException"/> naming the option.</summary>
    internal (string Vm, MigrationReceiverOptions Options) Read(ParseResult p)
    {
        string vm = p.GetValue(Vm)!;
        if (vm is not ("auto" or VmKind.Micro or VmKind.Host))
        {
            throw new FormatException($"--vm '{vm}': use auto, microvm or hostvm.");
        }

        int? vcpus = p.GetValue(ExpectVcpus);
        if (vcpus < 1)
        {
            throw new FormatException($"--expect-vcpus {vcpus}: use a vCPU count of at least 1.");
        }

        if (vm == VmKind.Micro && VmKind.WhyNoKvm() is { } why)
        {
            // Checked before listening: otherwise every source would be accepted and then fail here.
            throw new FormatException($"--vm microvm needs KVM, and {why}: use --vm hostvm (or auto).");
        }

        var options = new MigrationReceiverOptions
        {
            MaxMemory = p.GetValue(MaxMemory) == "auto" ? HostMemory() : CliInput.Parse(p, MaxMemory, Units.ParseBytes),
            ExpectedMemory = CliInput.ParseOptional(p, ExpectMemory, Units.ParseBytes),
            ExpectedVcpus = vcpus,
            MaxRegions = p.GetValue(MaxRegions) ?? new MigrationReceiverOptions().MaxRegions,

            // Without --max-vcpus, expecting exactly N vCPUs accepts N.
            MaxVcpus = p.GetValue(MaxVcpus) ?? Math.Max(new MigrationReceiverOptions().MaxVcpus, vcpus ?? 0),
            ReconnectTimeout = CliInput.Parse(p, ReconnectTimeout, Units.ParseDuration),
            HugePages = !p.GetValue(NoHugePages),
        };
        CliInput.Validate(options.Validate, new Dictionary<string, Option>
        {
            [nameof(MigrationReceiverOptions.MaxMemory)] = MaxMemory,
            [nameof(MigrationReceiverOptions.ExpectedMemory)] = ExpectMemory,
            [nameof(MigrationReceiverOptions.ExpectedVcpus)] = ExpectVcpus,
            [nameof(MigrationReceiverOptions.MaxRegions)] = MaxRegions,
            [nameof(MigrationReceiverOptions.MaxVcpus)] = MaxVcpus,
            [nameof(MigrationReceiverOptions.ReconnectTimeout)] = ReconnectTimeout,
        });
        return (VmKind.Resolve(vm), options);
    }

    // A VM larger than the host commits more than it has as pages arrive (a 2 MiB huge page per
    // 4 KiB written, at worst): by default nothing larger than the host is accepted.
    private static ulong HostMemory()
    {
        const ulong Cap = 64UL << 30;
        long total = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (total <= 0)
        {
            // Not known to the runtime (yet): the library's default.
            return Cap;
        }

        ulong pages = (ulong)total / Memory.GuestMemoryLayout.PageSize;
        return Math.Clamp(pages * Memory.GuestMemoryLayout.PageSize, Memory.GuestMemoryLayout.PageSize, Cap);
    }
}
