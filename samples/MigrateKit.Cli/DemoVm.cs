using System;
using System.IO;
using MigrateKit.Kvm;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>
/// The VM a CLI command migrates: a <see cref="MicroVm"/> on KVM, or a <see cref="HostVm"/>
/// (guest writes by a host thread, tracked with userfaultfd write-protection) where there is no KVM.
/// </summary>
internal sealed class DemoVm : IDisposable
{
    private readonly MicroVm? _micro;
    private readonly HostVm? _host;

    private DemoVm(MicroVm? micro, HostVm? host)
    {
        _micro = micro;
        _host = host;
    }

    /// <summary>"microvm" or "hostvm".</summary>
    internal string Kind => _micro is not null ? "microvm" : "hostvm";

    internal IMigrationSource Source => (IMigrationSource?)_micro ?? _host!;

    internal IDirtyPageTracker CreateTracker() => _micro is not null ? _micro.CreateTracker() : _host!.CreateTracker();

    internal VcpuStatus Status() => _micro is not null ? _micro.GetStatus()[0] : _host!.GetStatus();

    internal bool WaitForPass(uint passes, TimeSpan timeout) =>
        _micro is not null ? _micro.WaitForPass(passes, timeout) : _host!.WaitForPass(passes, timeout);

    internal static DemoVm Of(MicroVm vm) => new(vm, null);

    internal static DemoVm Of(HostVm vm) => new(null, vm);

    /// <summary>Wraps what a receiver built.</summary>
    internal static DemoVm? Of(IMigrationTarget? target) => target switch
    {
        MicroVm m => Of(m),
        HostVm h => Of(h),
        _ => null,
    };

    /// <summary>Resolves <c>--vm auto</c>: a MicroVm where KVM can be opened, else a HostVm.</summary>
    internal static string Resolve(string kind)
    {
        if (kind != "auto")
        {
            return kind;
        }

        if (!File.Exists(KvmSystem.DefaultPath))
        {
            return "hostvm";
        }

        try
        {
            using KvmSystem kvm = KvmSystem.Open();
            return "microvm";
        }
        catch (KvmException)
        {
            return "hostvm";
        }
    }

    public void Dispose()
    {
        _micro?.Dispose();
        _host?.Dispose();
    }
}
