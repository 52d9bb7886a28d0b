using System;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Threading.Tasks;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// Compiles the methods of a type and of its nested types (async state machines and lambdas
/// included) ahead of use. The switchover runs code a process has never run before; compiling
/// it when the migration starts keeps the JIT out of the downtime. Without a JIT (native AOT)
/// this does nothing; each type is prepared once per process.
/// </summary>
/// <remarks>
/// Prepare a type before its first instance is created: once a type has an instance (or its
/// interface has been called on another type), preparing its interface methods compiles
/// nothing, and they compile on their first call after all (seen with .NET 10). Even prepared
/// first, the receiver's frame handlers compiled again on their first call through the
/// interface, so a receiver calls the switchover's once when it is built
/// (<c>MigrationReceiver.RehearseHandlers</c>).
/// Generic code instantiated over value types is not covered either; rehearsals that run the
/// code once (<c>StreamRehearsal</c>, <c>DestinationChannel.Rehearse</c>) take care of that.
/// </remarks>
internal static class JitWarmup
{
    private static readonly ConcurrentDictionary<Type, byte> Prepared = new();

    /// <summary>AsyncMethodBuilderCore.Start, which every async method's builder calls; null if the runtime has none.</summary>
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Warm-up only: a type trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Warm-up only: a member trimmed away is simply not compiled ahead.")]
    private static readonly MethodInfo? CoreStart = typeof(AsyncTaskMethodBuilder).Assembly
        .GetType("System.Runtime.CompilerServices.AsyncMethodBuilderCore")?
        .GetMethod("Start", BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Static);

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

    /// <summary>
    /// Compiles the source engine's code: the switchover's, and the forecast and decision that
    /// run after each harvest (on the decisive round, the guest dirties pages while they run).
    /// </summary>
    internal static void PrepareEngine()
    {
        Prepare(typeof(PreCopyEngine));
        Prepare(typeof(PreCopyRun));
        Prepare(typeof(RegionSet));
        Prepare(typeof(EngineRegion));
        Prepare(typeof(HotPageDeferral));
        Prepare(typeof(PageHeat));
        Prepare(typeof(RoundSender));
        PreparePages();
        Prepare(typeof(TransferMeasurements));
        Prepare(typeof(DowntimeEstimator));
        Prepare(typeof(DowntimeHistory));
        Prepare(typeof(BandwidthMeter));
        Prepare(typeof(DirtyRateMeter));
        Prepare(typeof(Quantile));
        Prepare(typeof(MigrationPolicy));
        Prepare(typeof(DestinationLink));
        Prepare(typeof(Reconnector));
        Prepare(typeof(LinkRecovery));
        Prepare(typeof(Switchover));
        Prepare(typeof(SourceRecovery));
        Prepare(typeof(EngineRecorder));
    }

    /// <summary>
    /// Compiles the per-page code both ends run: the bitmaps, the encodings and the digests. Its
    /// hot methods are marked for full optimisation, so they compile once, here, and never run
    /// unoptimised: a process that migrates once keeps compiling new code, which holds the
    /// runtime's tier-up back for as long as the migration lasts.
    /// </summary>
    internal static void PreparePages()
    {
        Prepare(typeof(DirtyBitmap));
        Prepare(typeof(GuestMemoryRegion));
        Prepare(typeof(PageEncoder));
        Prepare(typeof(PageDelta));
        Prepare(typeof(SentPageCache));
        Prepare(typeof(EncodedPageBatch));
        Prepare(typeof(RegionDigestAccumulator));
        Prepare(typeof(PageHash));
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

            Compile(method);
        }

        foreach (ConstructorInfo constructor in type.GetConstructors(all))
        {
            Compile(constructor);
        }

        foreach (Type nested in type.GetNestedTypes(all))
        {
            PrepareAll(nested, depth + 1);
            if (AsyncBox(nested) is { } box)
            {
                PrepareAll(box, depth + 1);
                PrepareAwaits(nested);
            }
        }
    }

    /// <summary>
    /// Compiles one method. Code shared between instantiations (generic over reference types)
    /// is compiled only when given the exact type arguments: the declaring type's, then the method's.
    /// </summary>
    private static void Compile(MethodBase method)
    {
        try
        {
            Type[] typeArguments = method.DeclaringType is { IsGenericType: true } declaring ? declaring.GetGenericArguments() : [];
            Type[] methodArguments = method.IsGenericMethod ? method.GetGenericArguments() : [];
            if (typeArguments.Length + methodArguments.Length == 0)
            {
                RuntimeHelpers.PrepareMethod(method.MethodHandle);
                return;
            }

            var instantiation = new RuntimeTypeHandle[typeArguments.Length + methodArguments.Length];
            for (int i = 0; i < instantiation.Length; i++)
            {
                instantiation[i] = (i < typeArguments.Length ? typeArguments[i] : methodArguments[i - typeArguments.Length]).TypeHandle;
            }

            RuntimeHelpers.PrepareMethod(method.MethodHandle, instantiation);
        }
        catch (Exception ex) when (ex is ArgumentException or InvalidOperationException or NotSupportedException)
        {
            // Not preparable here; it compiles on first use as usual.
        }
    }

    /// <summary>
    /// Compiles the builder's generic methods an async method calls when it really waits
    /// (AwaitUnsafeOnCompleted over each awaiter it stores, and the box lookup): each is an
    /// instantiation over the state machine, compiled on first use otherwise.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Warm-up only: a member trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Warm-up only: a member trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2060", Justification = "Warm-up only: the instantiation exists whenever the async method does.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Only reached with a JIT (IsDynamicCodeCompiled).")]
    private static void PrepareAwaits(Type stateMachine)
    {
        const BindingFlags fields = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;
        const BindingFlags methods = BindingFlags.Instance | BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        Type? builder = stateMachine.GetField("<>t__builder", fields)?.FieldType;
        if (builder is null)
        {
            return;
        }

        foreach (MethodInfo method in builder.GetMethods(methods))
        {
            try
            {
                if (method.Name is "Start" or "GetStateMachineBox" && method.GetGenericArguments().Length == 1)
                {
                    Compile(method.MakeGenericMethod(stateMachine));
                    if (method.Name == "Start" && CoreStart is { } coreStart)
                    {
                        // The builder's Start calls the runtime's own, generic over the same state machine.
                        Compile(coreStart.MakeGenericMethod(stateMachine));
                    }

                    continue;
                }

                int arity = method.GetGenericArguments().Length;
                if (method.Name != "AwaitUnsafeOnCompleted" || arity is not (1 or 2))
                {
                    continue;
                }

                // The public overload over (awaiter, state machine), and the one it calls once the box exists.
                foreach (FieldInfo field in stateMachine.GetFields(fields))
                {
                    if (field.Name.StartsWith("<>u__", StringComparison.Ordinal))
                    {
                        Compile(arity == 2 ? method.MakeGenericMethod(field.FieldType, stateMachine) : method.MakeGenericMethod(field.FieldType));
                    }
                }
            }
            catch (ArgumentException)
            {
                // Constraints not met: not this builder's shape.
            }
        }
    }

    /// <summary>
    /// The runtime's box for an async method's state machine (a struct in release builds): the
    /// box is generic over the state machine, so its code compiles the first time the method
    /// really waits, unless prepared here. Null for anything else.
    /// </summary>
    [UnconditionalSuppressMessage("Trimming", "IL2070", Justification = "Warm-up only: a member trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2075", Justification = "Warm-up only: a member trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("Trimming", "IL2055", Justification = "Warm-up only: the box exists whenever the async method it boxes does.")]
    [UnconditionalSuppressMessage("Trimming", "IL2026", Justification = "Warm-up only: a type trimmed away is simply not compiled ahead.")]
    [UnconditionalSuppressMessage("AOT", "IL3050", Justification = "Only reached with a JIT (IsDynamicCodeCompiled).")]
    private static Type? AsyncBox(Type stateMachine)
    {
        if (!stateMachine.IsValueType || !typeof(IAsyncStateMachine).IsAssignableFrom(stateMachine) || stateMachine.ContainsGenericParameters)
        {
            return null;
        }

        Type? voidTaskResult = typeof(Task).Assembly.GetType("System.Threading.Tasks.VoidTaskResult");
        Type? boxDefinition = typeof(AsyncTaskMethodBuilder<>).GetNestedType("AsyncStateMachineBox`1", BindingFlags.NonPublic);
        Type? builder = stateMachine.GetField("<>t__builder", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic)?.FieldType;
        Type? result = builder switch
        {
            null => null,
            _ when builder == typeof(AsyncTaskMethodBuilder) => voidTaskResult,
            _ when builder.IsGenericType && builder.GetGenericTypeDefinition() == typeof(AsyncTaskMethodBuilder<>) => builder.GetGenericArguments()[0],
            _ => null,
        };
        try
        {
            return result is null ? null : boxDefinition?.MakeGenericType(result, stateMachine);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }
}
