using System;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>The KVM device (<c>/dev/kvm</c>): API version, capabilities, and the factory for VMs.</summary>
public sealed class KvmSystem : IDisposable
{
    /// <summary>The path opened when none is given.</summary>
    public const string DefaultPath = "/dev/kvm";

    private readonly SafeFdHandle _fd;

    private KvmSystem(SafeFdHandle fd, string path)
    {
        _fd = fd;
        Path = path;
        using (new HandleLease(_fd))
        {
            KvmException.Check(NativeMethods.KvmApiVersion(_fd.Fd, out int version), "KVM_GET_API_VERSION");
            ApiVersion = version;
            KvmException.Check(NativeMethods.KvmVcpuMmapSize(_fd.Fd, out ulong mmapSize), "KVM_GET_VCPU_MMAP_SIZE");
            VcpuMmapSize = mmapSize;
        }
    }

    /// <summary>Opens the KVM device and checks its API version (12).</summary>
    /// <param name="path">The device path; the default is <see cref="DefaultPath"/>.</param>
    /// <exception cref="KvmException">The device cannot be opened (for example ENOENT when the path does not
    /// exist) or speaks another API version (EPROTO).</exception>
    public static KvmSystem Open(string? path = null)
    {
        string device = path ?? DefaultPath;
        int r = NativeMethods.KvmOpen(device, out int fd);
        if (r < 0)
        {
            throw new KvmException($"open {device}", -r);
        }

        return new KvmSystem(new SafeFdHandle(fd), device);
    }

    /// <summary>Whether a KVM device can be opened at <paramref name="path"/> (without keeping it open).</summary>
    public static bool IsAvailable(string? path = null)
    {
        try
        {
            using KvmSystem kvm = Open(path);
            return true;
        }
        catch (KvmException)
        {
            return false;
        }
        catch (DllNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The path that was opened.</summary>
    public string Path { get; }

    /// <summary>The KVM API version (always 12 for a usable device).</summary>
    public int ApiVersion { get; }

    /// <summary>The size of a vCPU's <c>kvm_run</c> mapping.</summary>
    public ulong VcpuMmapSize { get; }

    /// <summary>Asks KVM about a capability on the system fd (0 means unsupported).</summary>
    public int CheckExtension(KvmCapability capability)
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(NativeMethods.CheckExtension(_fd.Fd, (uint)capability, out int value), $"KVM_CHECK_EXTENSION ({capability})");
            return value;
        }
    }

    /// <summary>Creates a VM with no memory and no vCPUs.</summary>
    public KvmVm CreateVm()
    {
        using (new HandleLease(_fd))
        {
            KvmException.Check(NativeMethods.VmCreate(_fd.Fd, out int vmFd), "KVM_CREATE_VM");
            return new KvmVm(this, new SafeFdHandle(vmFd));
        }
    }

    /// <summary>Closes the device. VMs already created stay usable.</summary>
    public void Dispose() => _fd.Dispose();
}
