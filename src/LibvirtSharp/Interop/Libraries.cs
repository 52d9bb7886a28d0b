namespace LibvirtSharp.Interop;

/// <summary>Names of the native libraries LibvirtSharp loads.</summary>
internal static class Libraries
{
    /// <summary>libvirt's client library, by its ABI-stable soname.</summary>
    internal const string Libvirt = "libvirt.so.0";

    /// <summary>The C library, for <c>free</c> on strings libvirt hands over to the caller.</summary>
    internal const string LibC = "libc";
}
