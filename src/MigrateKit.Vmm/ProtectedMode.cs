using MigrateKit.Kvm;

namespace MigrateKit.Vmm;

/// <summary>The register state a <see cref="MicroVm"/>'s vCPUs start in.</summary>
internal static class ProtectedMode
{
    /// <summary>Code selector of the flat segments, as a boot loader's GDT would have it.</summary>
    internal const ushort CodeSelector = 0x8;

    /// <summary>Data selector of the flat segments.</summary>
    internal const ushort DataSelector = 0x10;

    /// <summary>
    /// Flat 4 GiB segments, 32-bit code, protection on, paging off: the state a boot loader
    /// leaves after switching to protected mode, set directly so no BIOS is needed.
    /// </summary>
    internal static KvmSpecialRegisters Flat32(KvmSpecialRegisters s)
    {
        KvmSegment code = new()
        {
            Base = 0,
            Limit = 0xFFFF_FFFF,
            Selector = CodeSelector,
            Type = 11,
            Present = 1,
            Dpl = 0,
            Db = 1,
            S = 1,
            L = 0,
            G = 1,
        };
        KvmSegment data = code with { Selector = DataSelector, Type = 3 };
        s.Cs = code;
        s.Ds = data;
        s.Es = data;
        s.Fs = data;
        s.Gs = data;
        s.Ss = data;
        s.Cr0 = (s.Cr0 | 0x1) & ~0x8000_0000UL;
        s.Cr4 = 0;
        s.Efer = 0;
        return s;
    }
}
