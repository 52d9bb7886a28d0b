using System.Runtime.InteropServices;

namespace LibvirtSharp.Interop;

/// <summary>UTF-8 strings coming back from libvirt, borrowed or handed over.</summary>
internal static unsafe class NativeString
{
    /// <summary>Copies a string libvirt keeps ownership of (<c>const char *</c> results).</summary>
    internal static string Borrowed(byte* value) => Marshal.PtrToStringUTF8((nint)value) ?? string.Empty;

    /// <summary>Copies a string the caller owns (<c>char *</c> results) and frees it with libc <c>free</c>.</summary>
    internal static string Take(byte* value)
    {
        try
        {
            return Borrowed(value);
        }
        finally
        {
            NativeMethods.Free(value);
        }
    }
}
