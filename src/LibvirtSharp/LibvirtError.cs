using System.Runtime.InteropServices;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// The one place where a libvirt failure becomes a <see cref="LibvirtException"/>. libvirt keeps
/// the last error per thread, so it must be read on the thread that made the failing call and
/// before any other libvirt call on that thread (every public libvirt function starts by resetting
/// it, including <c>virDomainFree</c> and <c>virConnectClose</c>). The <c>*Api</c> classes therefore
/// check results while they still hold the handle lease, before a release could run a free.
/// </summary>
internal static unsafe class LibvirtError
{
    /// <summary>Throws for a negative result; returns it otherwise.</summary>
    /// <param name="result">The libvirt function's return value.</param>
    /// <param name="function">The libvirt function, e.g. <c>virDomainDestroy</c>.</param>
    /// <param name="subject">What it was applied to (a domain name, a URI), or null.</param>
    internal static int Check(int result, string function, string? subject = null)
    {
        if (result < 0)
        {
            throw FromLastError(function, subject);
        }

        return result;
    }

    /// <summary>Throws for a NULL object pointer; returns it otherwise.</summary>
    internal static nint CheckPointer(nint result, string function, string? subject = null)
    {
        if (result == 0)
        {
            throw FromLastError(function, subject);
        }

        return result;
    }

    /// <summary>Builds the exception from the calling thread's last libvirt error and clears that error.</summary>
    internal static LibvirtException FromLastError(string function, string? subject = null)
    {
        string operation = subject is null ? function : $"{function}({subject})";
        VirError* error = NativeMethods.virGetLastError();
        LibvirtException exception = error is null
            ? new LibvirtException(operation, 0, 0, "libvirt reported a failure without setting an error")
            : new LibvirtException(operation, error->Code, error->Domain, Marshal.PtrToStringUTF8((nint)error->Message) ?? string.Empty);
        NativeMethods.virResetLastError();
        return exception;
    }
}
