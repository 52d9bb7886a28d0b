using System;
using System.Collections.Generic;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Threading;

namespace MigrateKit.Interop;

/// <summary>
/// Controls where MigrateKit finds its native shim, <c>libmigratekit.so</c>.
/// </summary>
/// <remarks>
/// <para>The shim is loaded on the first MigrateKit call that needs it, from the first of these
/// places that holds the file:</para>
/// <list type="number">
/// <item><description><see cref="LibraryPath"/>, when set;</description></item>
/// <item><description>the file named by the environment variable
/// <c>MIGRATEKIT_NATIVE_LIBRARY</c> (<see cref="EnvironmentVariable"/>), when set;</description></item>
/// <item><description><c>libmigratekit.so</c> next to <c>MigrateKit.dll</c>, then in the app's base
/// directory: a build with project references, or an app published for a runtime identifier
/// (<c>-r linux-x64</c>, single-file too);</description></item>
/// <item><description><c>runtimes/linux-x64/native/libmigratekit.so</c> under the directory of
/// <c>MigrateKit.dll</c>, then under the app's base directory: the NuGet package's layout, which a
/// framework-dependent app built without a runtime identifier keeps in its output;</description></item>
/// <item><description>the runtime's own search: the native directories the app's
/// <c>.deps.json</c> names, then the system loader (<c>LD_LIBRARY_PATH</c>, the ldconfig
/// cache).</description></item>
/// </list>
/// <para>An explicit path (the first two) is the only place tried: when no file is there, or it
/// does not load, the call fails with a <see cref="DllNotFoundException"/> that names it.</para>
/// </remarks>
public static class MigrateKitNative
{
    /// <summary>
    /// The environment variable that names the shim explicitly, <c>MIGRATEKIT_NATIVE_LIBRARY</c>;
    /// <see cref="LibraryPath"/> takes precedence over it.
    /// </summary>
    public const string EnvironmentVariable = "MIGRATEKIT_NATIVE_LIBRARY";

    /// <summary>The file name of the shim.</summary>
    internal const string FileName = "libmigratekit.so";

    private static readonly Lock s_gate = new();
    private static string? s_libraryPath;
    private static string? s_loadedPath;
    private static IntPtr s_handle;

    /// <summary>
    /// The path of <c>libmigratekit.so</c> to load instead of searching for it. Set it before the
    /// first MigrateKit call that touches KVM, guest memory or write tracking.
    /// </summary>
    /// <value>The default is <see langword="null"/>: the environment variable
    /// <c>MIGRATEKIT_NATIVE_LIBRARY</c> if set, otherwise the search described on
    /// <see cref="MigrateKitNative"/>.</value>
    /// <exception cref="InvalidOperationException">The shim is already loaded.</exception>
    public static string? LibraryPath
    {
        get
        {
            lock (s_gate)
            {
                return s_libraryPath;
            }
        }
        set
        {
            lock (s_gate)
            {
                if (s_handle != IntPtr.Zero)
                {
                    throw new InvalidOperationException(
                        $"{FileName} is already loaded from {s_loadedPath}; set MigrateKitNative.LibraryPath before the first MigrateKit call.");
                }

                s_libraryPath = value;
            }
        }
    }

    /// <summary>
    /// Where the shim was loaded from: a full path, or only its file name when the runtime's own
    /// search found it; <see langword="null"/> before it is loaded.
    /// </summary>
    public static string? LoadedPath
    {
        get
        {
            lock (s_gate)
            {
                return s_loadedPath;
            }
        }
    }

    // A library may not rely on its host to register the resolver, and it must be in place
    // before the first P/Invoke: that is exactly the case module initializers exist for.
#pragma warning disable CA2255
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void Initialize() =>
        NativeLibrary.SetDllImportResolver(typeof(MigrateKitNative).Assembly, Resolve);

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? searchPath)
    {
        if (name != Libraries.MigrateKit)
        {
            return IntPtr.Zero;
        }

        // Every function's first call comes here; the first load is kept for the rest.
        lock (s_gate)
        {
            if (s_handle == IntPtr.Zero)
            {
                s_handle = Load(assembly, searchPath, out s_loadedPath);
            }

            return s_handle;
        }
    }

    private static IntPtr Load(Assembly assembly, DllImportSearchPath? searchPath, out string loadedPath)
    {
        string? explicitPath = ExplicitPath(s_libraryPath, Environment.GetEnvironmentVariable(EnvironmentVariable), out string? source);
        if (explicitPath is not null)
        {
            loadedPath = explicitPath;
            return LoadExplicit(explicitPath, source!);
        }

        // Location is empty in single-file apps; AppContext.BaseDirectory covers those.
#pragma warning disable IL3000
        string? assemblyDirectory = Path.GetDirectoryName(assembly.Location);
#pragma warning restore IL3000
        List<string> candidates = SearchPaths(assemblyDirectory, AppContext.BaseDirectory, RuntimeInformation.ProcessArchitecture);
        foreach (string candidate in candidates)
        {
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                loadedPath = candidate;
                return handle;
            }
        }

        // The name differs from the DllImport's, so this never comes back to this resolver.
        if (NativeLibrary.TryLoad(FileName, assembly, searchPath, out IntPtr found))
        {
            loadedPath = FileName;
            return found;
        }

        throw new DllNotFoundException(NotFoundMessage(candidates));
    }

    /// <summary>
    /// The explicitly named shim, if any: <paramref name="property"/> before
    /// <paramref name="environment"/>; <paramref name="source"/> says which, for messages.
    /// </summary>
    internal static string? ExplicitPath(string? property, string? environment, out string? source)
    {
        if (!string.IsNullOrEmpty(property))
        {
            source = "MigrateKitNative.LibraryPath";
            return property;
        }

        if (!string.IsNullOrEmpty(environment))
        {
            source = EnvironmentVariable;
            return environment;
        }

        source = null;
        return null;
    }

    /// <summary>Loads the shim from a path the caller named, or says clearly why it cannot.</summary>
    internal static IntPtr LoadExplicit(string path, string source)
    {
        string full = Path.GetFullPath(path);
        if (!File.Exists(full))
        {
            string where = full == path ? string.Empty : $" ({full})";
            throw new DllNotFoundException(
                $"{source} names {path}{where}, but no file exists there. Point it at libmigratekit.so, or leave it unset to search the usual places.");
        }

        try
        {
            return NativeLibrary.Load(full);
        }
        catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
        {
            throw new DllNotFoundException($"{source} names {full}, which could not be loaded: {e.Message}", e);
        }
    }

    /// <summary>
    /// The places searched when no explicit path is set, in order, without repeats: the file in the
    /// assembly's directory and in the app's base directory, then in the NuGet
    /// <c>runtimes/linux-ARCH/native</c> folder under each of them.
    /// </summary>
    internal static List<string> SearchPaths(string? assemblyDirectory, string baseDirectory, Architecture architecture)
    {
        string nativeFolder = Path.Combine("runtimes", "linux-" + architecture.ToString().ToLowerInvariant(), "native");
        var paths = new List<string>(4);
        foreach (string? directory in new[] { assemblyDirectory, baseDirectory })
        {
            if (string.IsNullOrEmpty(directory))
            {
                continue;
            }

            Add(Path.Combine(directory, FileName));
        }

        foreach (string? directory in new[] { assemblyDirectory, baseDirectory })
        {
            if (string.IsNullOrEmpty(directory))
            {
                continue;
            }

            Add(Path.Combine(directory, nativeFolder, FileName));
        }

        return paths;

        void Add(string path)
        {
            string full = Path.GetFullPath(path);
            if (!paths.Contains(full))
            {
                paths.Add(full);
            }
        }
    }

    internal static string NotFoundMessage(IReadOnlyList<string> searched) =>
        $"{FileName} was not found. Searched: {string.Join(", ", searched)}, then the runtime's native search paths and the system loader. "
        + $"Install the MigrateKit package (it carries runtimes/linux-x64/native/{FileName}), or name the file with MigrateKitNative.LibraryPath "
        + $"or the {EnvironmentVariable} environment variable.";
}
