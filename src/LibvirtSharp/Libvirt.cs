using System;
using System.Runtime.InteropServices;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>Facts about the libvirt client library loaded into this process.</summary>
public static class Libvirt
{
    /// <summary>The version of the loaded libvirt.so.0 (<c>virGetVersion</c>), e.g. 9.0.0.</summary>
    /// <exception cref="DllNotFoundException">libvirt.so.0 cannot be loaded.</exception>
    public static unsafe Version LibraryVersion
    {
        get
        {
            LibvirtRuntime.EnsureInitialized();
            CULong version;
            LibvirtError.Check(NativeMethods.virGetVersion(&version, null, null), "virGetVersion");
            return Decode(version.Value);
        }
    }

    /// <summary>Whether libvirt.so.0 can be loaded (without opening any connection).</summary>
    public static bool IsAvailable => NativeLibrary.TryLoad(Libraries.Libvirt, typeof(Libvirt).Assembly, null, out _);

    /// <summary>Splits libvirt's <c>major * 1,000,000 + minor * 1,000 + release</c> encoding.</summary>
    internal static Version Decode(ulong version) =>
        new((int)(version / 1_000_000), (int)(version / 1_000 % 1_000), (int)(version % 1_000));
}
