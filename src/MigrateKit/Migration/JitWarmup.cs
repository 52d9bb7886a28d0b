using System;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;

namespace MigrateKit.Migration;

/// <summary>
/// Compiles the methods of a type and of its nested types (async state machines and lambdas
/// included) ahead of use. The switchover runs code a process has never run before; compiling
/// it when the migration starts keeps the JIT out of the downtime. Without a JIT (native AOT)
/// this does nothing; each type is prepared once per process.
/// </summary>
/// <remarks>
/// Prepare a type before anything calls it through an interface: once the runtime has
/// dispatched one interface call on a type, preparing that type's other interface methods
/// compiles nothing, and they compile on their first call after all (seen with .NET 10).
/// Generic code instantiated over value types is not covered either; rehearsals that run the
/// code once (<c>StreamRehearsal</c>, <c>DestinationChannel.Rehearse</c>) take care of that.
/// </remarks>
internal static class JitWarmup
{
    private static readonly ConcurrentDictionary<Type, byte> Prepared = new();

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Warm-up only: a method trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Warm-up only: a method trimmed away is simply not compiled ahead.")]
    internal static void Prepare([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.All)] Type type)
    {
        // Compiled code stays for the life of the process: once per type is enough.
        if (!RuntimeFeature.IsDynamicCodeCompiled || !Prepared.TryAdd(type, 0))
        {
            return;
        }

        PrepareAll(type, depth: 0);
    }

    /// <summary>Whether <see cref="Prepare"/> ran for <paramref name="type"/> in this process.</summary>
    internal static bool IsPrepared(Type type) => Prepared.ContainsKey(type);

    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Warm-up only.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Warm-up only.")]
    private static void PrepareAll(Type type, int depth)
    {
        const BindingFlags all = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;
        if (type.ContainsGenericParameters || depth > 3)
        {
            return;
        }

        foreach (MethodInfo method in type.GetMethods(all))
        {
            if (method.IsAbstract || method.ContainsGenericParameters || (method.MethodImplementationFlags & MethodImplAttributes.InternalCall) != 0)
            {
                continue;
            }

            try
            {
                RuntimeHelpers.PrepareMethod(method.MethodHandle);
            }
            catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException)
            {
                // Not preparable here; it compiles on first use as usual.
            }
        }

        foreach (Type nested in type.GetNestedTypes(all))
        {
            PrepareAll(nested, depth + 1);
        }
    }
}
