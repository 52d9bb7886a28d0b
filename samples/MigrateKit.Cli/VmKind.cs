using System.IO;
using MigrateKit.Kvm;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>
/// The kinds of VM a CLI command migrates, by the names <c>--vm</c> takes: a <see cref="MicroVm"/>
/// on KVM, or a <see cref="HostVm"/> (guest writes by a host thread, tracked with userfaultfd
/// write-protection) where there is no KVM.
/// </summary>
internal static class VmKind
{
    internal const string Micro = "microvm";
    internal const string Host = "hostvm";

    /// <summary>"microvm" or "hostvm".</summary>
    internal static string Of(IWorkloadVm vm) => vm is HostVm ? Host : Micro;

    /// <summary>Resolves <c>--vm auto</c>: a MicroVm where KVM can be opened, else a HostVm.</summary>
    internal static string Resolve(string kind)
    {
        if (kind != "auto")
        {
            return kind;
        }

        return WhyNoKvm() is null ? Micro : Host;
    }

    /// <summary>Why a MicroVm cannot run here (no /dev/kvm, or it does not open); null when it can.</summary>
    internal static string? WhyNoKvm()
    {
        if (!File.Exists(KvmSystem.DefaultPath))
        {
            return $"{KvmSystem.DefaultPath} does not exist on this machine";
        }

        try
        {
            using KvmSystem kvm = KvmSystem.Open();
            return null;
        }
        catch (KvmException ex)
        {
            return ex.Message;
        }
    }
}
