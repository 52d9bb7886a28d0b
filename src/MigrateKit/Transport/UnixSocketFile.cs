using System;
using System.IO;
using MigrateKit.Interop;

namespace MigrateKit.Transport;

/// <summary>
/// The socket file of a Unix listener: only a stale socket is ever replaced, and the new one is
/// readable and writable by its owner only (0600), so no other local user can connect.
/// </summary>
internal static class UnixSocketFile
{
    /// <summary>The mode of a listener's socket file: owner read and write.</summary>
    internal const UnixFileMode Mode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>
    /// Removes a socket left at <paramref name="path"/> by an earlier listener (bind would fail on
    /// it). Anything else there (a regular file, a directory, a symbolic link) is left alone.
    /// </summary>
    /// <exception cref="MigrationConnectionException">Something other than a socket is at the path.</exception>
    internal static void RemoveStale(string path, string address)
    {
        int result = NativeMethods.PathIsSocket(path, out int isSocket);
        if (result == -Errno.ENOENT)
        {
            return;
        }

        if (result < 0)
        {
            throw new MigrationConnectionException(address, $"cannot inspect {path}: {Errno.Describe(-result)} ({Errno.Name(-result)})");
        }

        if (isSocket == 0)
        {
            throw new MigrationConnectionException(address, $"{path} exists and is not a socket; it was left in place (remove it or choose another path)");
        }

        File.Delete(path);
    }

    /// <summary>
    /// Restricts a freshly bound socket file to its owner. Called between bind and listen: until
    /// listen, connecting fails for everyone, so there is no window with a looser mode.
    /// </summary>
    internal static void Restrict(string path)
    {
        // The shim (and so this library) is Linux-only; the check tells the platform analyzer so.
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, Mode);
        }
    }
}
