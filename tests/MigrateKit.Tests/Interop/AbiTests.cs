using System;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Interop;
using MigrateKit.Kvm;

namespace MigrateKit.Tests.Interop;

/// <summary>
/// The managed mirrors of the shim's structures and KVM's ioctl numbers, checked against what
/// <c>mk_abi_query</c> reports from the C headers. Loading the shim needs no /dev/kvm.
/// </summary>
[TestClass]
public sealed class AbiTests
{
    private const long EINVAL = 22;

    [TestMethod]
    [DataRow((int)AbiQuery.IoctlGetApiVersion, 0xAE00L)]
    [DataRow((int)AbiQuery.IoctlCreateVm, 0xAE01L)]
    [DataRow((int)AbiQuery.IoctlCheckExtension, 0xAE03L)]
    [DataRow((int)AbiQuery.IoctlGetVcpuMmapSize, 0xAE04L)]
    [DataRow((int)AbiQuery.IoctlCreateVcpu, 0xAE41L)]
    [DataRow((int)AbiQuery.IoctlGetDirtyLog, 0x4010AE42L)]
    [DataRow((int)AbiQuery.IoctlSetUserMemoryRegion, 0x4020AE46L)]
    [DataRow((int)AbiQuery.IoctlEnableCap, 0x4068AEA3L)]
    [DataRow((int)AbiQuery.IoctlRun, 0xAE80L)]
    [DataRow((int)AbiQuery.IoctlGetRegs, 0x8090AE81L)]
    [DataRow((int)AbiQuery.IoctlSetRegs, 0x4090AE82L)]
    [DataRow((int)AbiQuery.IoctlGetSregs, 0x8138AE83L)]
    [DataRow((int)AbiQuery.IoctlSetSregs, 0x4138AE84L)]
    [DataRow((int)AbiQuery.IoctlClearDirtyLog, 0xC018AEC0L)]
    [DataRow((int)AbiQuery.IoctlResetDirtyRings, 0xAEC7L)]
    public void IoctlNumber_MatchesKvmAbi(int what, long expected) =>
        Assert.AreEqual(expected, Query((AbiQuery)what), ((AbiQuery)what).ToString());

    [TestMethod]
    public void DirtyRingPageOffset_Is64() =>
        Assert.AreEqual(64L, Query(AbiQuery.DirtyLogPageOffset));

    [TestMethod]
    public void UnknownQuery_ReturnsMinusEinval()
    {
        Assert.AreEqual(-EINVAL, NativeMethods.AbiQuery(0));
        Assert.AreEqual(-EINVAL, NativeMethods.AbiQuery(99));
        Assert.AreEqual(-EINVAL, NativeMethods.AbiQuery(-1));
        Assert.AreEqual(-EINVAL, NativeMethods.AbiQuery(int.MaxValue));
    }

    [TestMethod]
    public void EveryNamedQuery_IsKnownToTheShim()
    {
        foreach (AbiQuery what in Enum.GetValues<AbiQuery>())
        {
            Assert.IsGreaterThan(0L, NativeMethods.AbiQuery((int)what), what.ToString());
        }
    }

    [TestMethod]
    public void Registers_MatchKvmRegs()
    {
        Assert.AreEqual(144L, Query(AbiQuery.SizeofRegs));
        AssertSize<KvmRegisters>(AbiQuery.SizeofRegs);
        Assert.AreEqual(Query(AbiQuery.OffsetofRegsRip), Offset<KvmRegisters>(nameof(KvmRegisters.Rip)));
        Assert.AreEqual(128L, Offset<KvmRegisters>(nameof(KvmRegisters.Rip)));
    }

    [TestMethod]
    public void SpecialRegisters_MatchKvmSregs()
    {
        Assert.AreEqual(312L, Query(AbiQuery.SizeofSregs));
        AssertSize<KvmSpecialRegisters>(AbiQuery.SizeofSregs);
        AssertSize<KvmSegment>(AbiQuery.SizeofSegment);
        AssertSize<KvmDescriptorTable>(AbiQuery.SizeofDtable);
        Assert.AreEqual(24L, Query(AbiQuery.SizeofSegment));
        Assert.AreEqual(16L, Query(AbiQuery.SizeofDtable));
        Assert.AreEqual(Query(AbiQuery.OffsetofSregsGdt), Offset<KvmSpecialRegisters>(nameof(KvmSpecialRegisters.Gdt)));
        Assert.AreEqual(Query(AbiQuery.OffsetofSregsCr0), Offset<KvmSpecialRegisters>(nameof(KvmSpecialRegisters.Cr0)));
        Assert.AreEqual(Query(AbiQuery.OffsetofSregsEfer), Offset<KvmSpecialRegisters>(nameof(KvmSpecialRegisters.Efer)));

        // The interrupt bitmap closes the structure: four words right before its end.
        Assert.AreEqual(Query(AbiQuery.SizeofSregs) - 32, Offset<KvmSpecialRegisters>(nameof(KvmSpecialRegisters.InterruptBitmap)));
        Assert.AreEqual(32, Unsafe.SizeOf<InterruptBitmap>());
    }

    [TestMethod]
    public void VcpuExit_MatchesMkVcpuExit()
    {
        Assert.AreEqual(24L, Query(AbiQuery.SizeofVcpuExit));
        AssertSize<NativeVcpuExit>(AbiQuery.SizeofVcpuExit);
        Assert.AreEqual(Query(AbiQuery.OffsetofExitData), Offset<NativeVcpuExit>(nameof(NativeVcpuExit.Data)));
    }

    [TestMethod]
    public void DirtyEntry_MatchesMkDirtyEntryAndKvmDirtyGfn()
    {
        // The managed side sizes a ring as bytes / 16, the size of kvm_dirty_gfn.
        Assert.AreEqual(16L, Query(AbiQuery.SizeofDirtyEntry));
        Assert.AreEqual(16L, Query(AbiQuery.SizeofDirtyGfn));
        AssertSize<NativeDirtyEntry>(AbiQuery.SizeofDirtyEntry);
        Assert.AreEqual(8L, Offset<NativeDirtyEntry>(nameof(NativeDirtyEntry.Offset)));
    }

    [TestMethod]
    public void ExitReasons_AreKvmsNumbers()
    {
        // MK_EXIT_* in migratekit.h, which are KVM_EXIT_*.
        Assert.AreEqual(0u, (uint)VcpuExitReason.Unknown);
        Assert.AreEqual(2u, (uint)VcpuExitReason.Io);
        Assert.AreEqual(5u, (uint)VcpuExitReason.Halt);
        Assert.AreEqual(6u, (uint)VcpuExitReason.Mmio);
        Assert.AreEqual(8u, (uint)VcpuExitReason.Shutdown);
        Assert.AreEqual(9u, (uint)VcpuExitReason.FailEntry);
        Assert.AreEqual(10u, (uint)VcpuExitReason.Interrupted);
        Assert.AreEqual(17u, (uint)VcpuExitReason.InternalError);
        Assert.AreEqual(31u, (uint)VcpuExitReason.DirtyRingFull);
    }

    [TestMethod]
    public void KvmCheck_MapsNegativeResultsToKvmException()
    {
        KvmException.Check(0, "nothing");
        KvmException.Check(5, "a positive result");
        KvmException ex = Assert.ThrowsExactly<KvmException>(() => KvmException.Check(-Errno.EINVAL, "KVM_CREATE_VM"));
        Assert.AreEqual("KVM_CREATE_VM", ex.Operation);
        Assert.AreEqual(Errno.EINVAL, ex.Errno);
        Assert.AreEqual("EINVAL", ex.ErrnoName);
        Assert.Contains("KVM_CREATE_VM", ex.Message);
        Assert.Contains("(EINVAL)", ex.Message);
        Assert.IsInstanceOfType<LinuxException>(ex, "a KVM failure is also a Linux failure");
        Assert.AreEqual("EINVAL", Errno.Name(Errno.EINVAL));
        Assert.AreEqual("errno 4242", Errno.Name(4242));
    }

    [TestMethod]
    public void ErrnoCheck_MapsNegativeResultsToLinuxException_NotToAFacilityOfItsOwn()
    {
        Errno.Check(0, "nothing");
        Errno.Check(5, "a positive result");
        LinuxException ex = Assert.ThrowsExactly<LinuxException>(() => Errno.Check(-Errno.ENOMEM, "mmap of 4096 bytes for region 0"));
        Assert.AreEqual("mmap of 4096 bytes for region 0", ex.Operation);
        Assert.AreEqual(Errno.ENOMEM, ex.Errno);
        Assert.AreEqual("ENOMEM", ex.ErrnoName);
        Assert.Contains("(ENOMEM)", ex.Message);
    }

    private static long Query(AbiQuery what)
    {
        long value = NativeMethods.AbiQuery((int)what);
        Assert.IsGreaterThan(0L, value, $"mk_abi_query({what}) = {value}");
        return value;
    }

    private static void AssertSize<T>(AbiQuery what)
        where T : struct
    {
        long native = Query(what);
        Assert.AreEqual(native, (long)Unsafe.SizeOf<T>(), $"Unsafe.SizeOf<{typeof(T).Name}>");
        Assert.AreEqual(native, (long)Marshal.SizeOf<T>(), $"Marshal.SizeOf<{typeof(T).Name}>");
    }

    private static long Offset<T>(string field) => Marshal.OffsetOf<T>(field).ToInt64();
}
