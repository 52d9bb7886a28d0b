using System.Runtime.InteropServices;

namespace LibvirtSharp.Interop;

/// <summary>
/// Mirror of <c>virTypedParameter</c> (libvirt-common.h), 96 bytes on LP64:
/// <code>
///  0        80     84    88             96
///  +--------+------+-----+--------------+
///  | field  | type | pad | value (union)|
///  | char[80]  int        8 bytes       |
///  +--------+------+-----+--------------+
/// </code>
/// The union is 8-aligned (long long, double, char*), hence the 4 bytes of padding.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = 96)]
internal unsafe struct VirTypedParameter
{
    /// <summary><c>VIR_TYPED_PARAM_FIELD_LENGTH</c>: the name buffer, including its NUL.</summary>
    internal const int FieldLength = 80;

    [FieldOffset(0)]
    public fixed byte Field[FieldLength];

    [FieldOffset(80)]
    public int Type;

    [FieldOffset(88)]
    public int I;

    [FieldOffset(88)]
    public uint UI;

    [FieldOffset(88)]
    public long L;

    [FieldOffset(88)]
    public ulong UL;

    [FieldOffset(88)]
    public double D;

    [FieldOffset(88)]
    public byte B;

    [FieldOffset(88)]
    public byte* S;
}

/// <summary>Values of <c>virTypedParameterType</c>.</summary>
internal static class VirTypedParameterType
{
    internal const int Int = 1;
    internal const int UInt = 2;
    internal const int LLong = 3;
    internal const int ULLong = 4;
    internal const int Double = 5;
    internal const int Boolean = 6;
    internal const int String = 7;
}

/// <summary>Mirror of <c>virError</c> (virterror.h), 80 bytes on LP64. Read-only: libvirt owns it.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirError
{
    public int Code;
    public int Domain;
    public byte* Message;
    public int Level;
    public nint Conn;
    public nint Dom;
    public byte* Str1;
    public byte* Str2;
    public byte* Str3;
    public int Int1;
    public int Int2;
    public nint Net;
}

/// <summary>Mirror of <c>virDomainStatsRecord</c> (libvirt-domain.h), 24 bytes on LP64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct VirDomainStatsRecord
{
    public nint Dom;
    public VirTypedParameter* Params;
    public int NParams;
}
