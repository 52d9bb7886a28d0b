using System;
using System.IO;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MigrateKit.Interop;

/// <summary>
/// Controls where MigrateKit finds <c>libmigratekit.so</c>. By default it is looked up next to
/// the MigrateKit assembly, then under <c>runtimes/linux-x64/native</c> (the NuGet layout),
/// then by the system loader.
/// </summary>
public static class MigrateKitNative
{
    private static string? s_libraryPath;

    /// <summary>
    /// An explicit path to <c>libmigratekit.so</c>, tried before every other location.
    /// Set it before the first MigrateKit call; the environment variable
    /// <c>MIGRATEKIT_NATIVE_PATH</c> has the same effect.
    /// </summary>
    /// <value>The default is <see langword="null"/> (search the usual places).</value>
    public static string? LibraryPath
    {
        get => s_libraryPath;
        set => s_libraryPath = value;
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

        foreach (string candidate in Candidates(assembly))
        {
            if (File.Exists(candidate) && NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                return handle;
            }
        }

        return NativeLibrary.TryLoad(name + ".so", assembly, searchPath, out IntPtr fallback) ? fallback : IntPtr.Zero;
    }

    private static System.Collections.Generic.IEnumerable<string> Candidates(Assembly assembly)
    {
        if (!string.IsNullOrEmpty(s_libraryPath))
        {
            yield return s_libraryPath;
        }

        string? env = Environment.GetEnvironmentVariable("MIGRATEKIT_NATIVE_PATH");
        if (!string.IsNullOrEmpty(env))
        {
            yield return env;
        }

        // Location is empty in single-file apps; AppContext.BaseDirectory covers those below.
#pragma warning disable IL3000
        string baseDir = Path.GetDirectoryName(assembly.Location) is { Length: > 0 } dir ? dir : AppContext.BaseDirectory;
#pragma warning restore IL3000
        yield return Path.Combine(baseDir, "libmigratekit.so");
        yield return Path.Combine(baseDir, "runtimes", "linux-x64", "native", "libmigratekit.so");
        yield return Path.Combine(AppContext.BaseDirectory, "libmigratekit.so");
        yield return Path.Combine(AppContext.BaseDirectory, "runtimes", "linux-x64", "native", "libmigratekit.so");
    }
}
