namespace MigrateKit.Qemu;

/// <summary>A file QEMU loads into guest memory at <paramref name="Address"/> (see <see cref="QemuProcessOptions.MemoryFiles"/>).</summary>
/// <param name="Path">The file, loaded byte for byte.</param>
/// <param name="Address">The guest-physical address of its first byte.</param>
public sealed record QemuMemoryFile(string Path, ulong Address);
