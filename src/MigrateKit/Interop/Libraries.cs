namespace MigrateKit.Interop;

/// <summary>Names of the native libraries MigrateKit loads.</summary>
internal static class Libraries
{
    /// <summary>The shim built from <c>native/</c>: <c>libmigratekit.so</c>.</summary>
    internal const string MigrateKit = "libmigratekit";
}
