using System.Collections.Generic;

namespace LibvirtSharp;

/// <summary>
/// Reads values out of a typed-parameter dictionary. libvirt documents each field's type, but
/// accepting any integer type that fits keeps the mapping correct across driver versions that
/// widened or narrowed a field.
/// </summary>
internal static class TypedValue
{
    internal static ulong? UInt64(IReadOnlyDictionary<string, object> parameters, string name) =>
        parameters.TryGetValue(name, out object? value) ? value switch
        {
            ulong u => u,
            uint u => u,
            long l when l >= 0 => (ulong)l,
            int i when i >= 0 => (ulong)i,
            _ => null,
        } : null;

    internal static long? Int64(IReadOnlyDictionary<string, object> parameters, string name) =>
        parameters.TryGetValue(name, out object? value) ? value switch
        {
            long l => l,
            int i => i,
            uint u => u,
            ulong u when u <= long.MaxValue => (long)u,
            _ => null,
        } : null;

    internal static int? Int32(IReadOnlyDictionary<string, object> parameters, string name) =>
        parameters.TryGetValue(name, out object? value) ? value switch
        {
            int i => i,
            uint u when u <= int.MaxValue => (int)u,
            long l when l is >= int.MinValue and <= int.MaxValue => (int)l,
            ulong u when u <= int.MaxValue => (int)u,
            _ => null,
        } : null;

    internal static bool? Boolean(IReadOnlyDictionary<string, object> parameters, string name) =>
        parameters.TryGetValue(name, out object? value) && value is bool b ? b : null;

    internal static string? String(IReadOnlyDictionary<string, object> parameters, string name) =>
        parameters.TryGetValue(name, out object? value) ? value as string : null;
}
