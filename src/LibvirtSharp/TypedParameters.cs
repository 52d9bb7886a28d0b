using System;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using System.Text;
using LibvirtSharp.Interop;

namespace LibvirtSharp;

/// <summary>
/// A <c>virTypedParameter</c> array built by libvirt's own <c>virTypedParamsAdd*</c> functions (so
/// names are length-checked and strings copied the way libvirt expects) and released with
/// <c>virTypedParamsFree</c>. Also reads arrays libvirt returns into a dictionary.
/// </summary>
/// <remarks>
/// Building is single-threaded: the array moves on every add (libvirt reallocates it). Pass
/// <see cref="Pointer"/> and <see cref="Count"/> to a native call while the instance is alive.
/// </remarks>
internal sealed unsafe class TypedParameters : SafeHandle
{
    private int _count;
    private int _capacity;

    public TypedParameters()
        : base(0, ownsHandle: true)
    {
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>The number of parameters added.</summary>
    internal int Count => _count;

    /// <summary>The array (NULL while empty, which libvirt accepts with a count of 0).</summary>
    internal VirTypedParameter* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(IsClosed, this);
            return (VirTypedParameter*)handle;
        }
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_INT</c>.</summary>
    internal void AddInt(string name, int value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddInt(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_UINT</c>.</summary>
    internal void AddUInt(string name, uint value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddUInt(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_LLONG</c>.</summary>
    internal void AddLLong(string name, long value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddLLong(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_ULLONG</c>.</summary>
    internal void AddULLong(string name, ulong value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddULLong(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_DOUBLE</c>.</summary>
    internal void AddDouble(string name, double value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddDouble(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_BOOLEAN</c>.</summary>
    internal void AddBoolean(string name, bool value)
    {
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddBoolean(&growth.Array, &growth.Count, &growth.Capacity, name, value ? 1 : 0);
        End(growth, result, name);
    }

    /// <summary>Adds a <c>VIR_TYPED_PARAM_STRING</c> (libvirt copies the value).</summary>
    internal void AddString(string name, string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        Growth growth = Begin();
        int result = NativeMethods.virTypedParamsAddString(&growth.Array, &growth.Count, &growth.Capacity, name, value);
        End(growth, result, name);
    }

    /// <summary>Reads an array into a dictionary keyed by field name (ordinal; a repeated name keeps its last value).</summary>
    /// <remarks>
    /// Values are boxed as <see cref="int"/>, <see cref="uint"/>, <see cref="long"/>, <see cref="ulong"/>,
    /// <see cref="double"/>, <see cref="bool"/> or <see cref="string"/>; parameters of a type newer than
    /// this binding are skipped. The array is not freed.
    /// </remarks>
    internal static Dictionary<string, object> Read(VirTypedParameter* parameters, int count)
    {
        var result = new Dictionary<string, object>(Math.Max(count, 0), StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            VirTypedParameter* parameter = parameters + i;
            object? value = parameter->Type switch
            {
                VirTypedParameterType.Int => parameter->I,
                VirTypedParameterType.UInt => parameter->UI,
                VirTypedParameterType.LLong => parameter->L,
                VirTypedParameterType.ULLong => parameter->UL,
                VirTypedParameterType.Double => parameter->D,
                VirTypedParameterType.Boolean => parameter->B != 0,
                VirTypedParameterType.String => NativeString.Borrowed(parameter->S),
                _ => null,
            };
            if (value is not null)
            {
                result[FieldName(parameter)] = value;
            }
        }

        return result;
    }

    /// <summary>Reads an array libvirt handed over, then frees it with <c>virTypedParamsFree</c> whatever happens.</summary>
    internal static Dictionary<string, object> ReadAndFree(VirTypedParameter* parameters, int count)
    {
        try
        {
            return Read(parameters, count);
        }
        finally
        {
            NativeMethods.virTypedParamsFree(parameters, count);
        }
    }

    protected override bool ReleaseHandle()
    {
        NativeMethods.virTypedParamsFree((VirTypedParameter*)handle, _count);
        _count = 0;
        _capacity = 0;
        return true;
    }

    private static string FieldName(VirTypedParameter* parameter)
    {
        var field = new ReadOnlySpan<byte>(parameter->Field, VirTypedParameter.FieldLength);
        int end = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(end < 0 ? field : field[..end]);
    }

    private Growth Begin()
    {
        ObjectDisposedException.ThrowIf(IsClosed, this);
        return new Growth { Array = (VirTypedParameter*)handle, Count = _count, Capacity = _capacity };
    }

    private void End(in Growth growth, int result, string name)
    {
        // libvirt grows the array before it validates the new entry, so even a failed add may have
        // moved it: always adopt the new pointer, or the old one would be freed twice.
        SetHandle((nint)growth.Array);
        _count = growth.Count;
        _capacity = growth.Capacity;
        LibvirtError.Check(result, "virTypedParamsAdd", name);
    }

    /// <summary>The three in/out arguments of a <c>virTypedParamsAdd*</c> call.</summary>
    private struct Growth
    {
        public VirTypedParameter* Array;
        public int Count;
        public int Capacity;
    }
}
