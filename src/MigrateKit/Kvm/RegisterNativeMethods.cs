using System.Runtime.InteropServices;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>
/// Raw declarations of the shim's exports that take the register structs of this namespace; they
/// live here, not in <see cref="NativeMethods"/>, so the interop layer depends on nothing above it.
/// </summary>
internal static partial class RegisterNativeMethods
{
    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_get_regs")]
    internal static partial int VcpuGetRegs(int vcpuFd, out KvmRegisters regs);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_set_regs")]
    internal static partial int VcpuSetRegs(int vcpuFd, in KvmRegisters regs);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_get_sregs")]
    internal static partial int VcpuGetSregs(int vcpuFd, out KvmSpecialRegisters sregs);

    [LibraryImport(Libraries.MigrateKit, EntryPoint = "mk_vcpu_set_sregs")]
    internal static partial int VcpuSetSregs(int vcpuFd, in KvmSpecialRegisters sregs);
}
