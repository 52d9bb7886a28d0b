using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace MigrateKit.Kvm;

/// <summary>General-purpose registers of a vCPU (layout of <c>struct kvm_regs</c>, 144 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmRegisters
{
    /// <summary>RAX.</summary>
    public ulong Rax;
    /// <summary>RBX.</summary>
    public ulong Rbx;
    /// <summary>RCX.</summary>
    public ulong Rcx;
    /// <summary>RDX.</summary>
    public ulong Rdx;
    /// <summary>RSI.</summary>
    public ulong Rsi;
    /// <summary>RDI.</summary>
    public ulong Rdi;
    /// <summary>RSP.</summary>
    public ulong Rsp;
    /// <summary>RBP.</summary>
    public ulong Rbp;
    /// <summary>R8.</summary>
    public ulong R8;
    /// <summary>R9.</summary>
    public ulong R9;
    /// <summary>R10.</summary>
    public ulong R10;
    /// <summary>R11.</summary>
    public ulong R11;
    /// <summary>R12.</summary>
    public ulong R12;
    /// <summary>R13.</summary>
    public ulong R13;
    /// <summary>R14.</summary>
    public ulong R14;
    /// <summary>R15.</summary>
    public ulong R15;
    /// <summary>RIP.</summary>
    public ulong Rip;
    /// <summary>RFLAGS (bit 1 is always set).</summary>
    public ulong Rflags;
}

/// <summary>A segment register (layout of <c>struct kvm_segment</c>, 24 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmSegment
{
    /// <summary>Base address.</summary>
    public ulong Base;
    /// <summary>Limit in bytes (already scaled by granularity).</summary>
    public uint Limit;
    /// <summary>Selector.</summary>
    public ushort Selector;
    /// <summary>Type field of the descriptor (e.g. 11 = execute/read, accessed).</summary>
    public byte Type;
    /// <summary>Present bit.</summary>
    public byte Present;
    /// <summary>Descriptor privilege level.</summary>
    public byte Dpl;
    /// <summary>Default operation size (1 = 32-bit).</summary>
    public byte Db;
    /// <summary>Code/data (1) or system (0) segment.</summary>
    public byte S;
    /// <summary>64-bit code segment.</summary>
    public byte L;
    /// <summary>Granularity (1 = 4 KiB units).</summary>
    public byte G;
    /// <summary>Available for software.</summary>
    public byte Avl;
    /// <summary>Unusable segment.</summary>
    public byte Unusable;
    /// <summary>Padding.</summary>
    public byte Padding;
}

/// <summary>A descriptor-table register (layout of <c>struct kvm_dtable</c>, 16 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmDescriptorTable
{
    /// <summary>Base address.</summary>
    public ulong Base;
    /// <summary>Limit.</summary>
    public ushort Limit;
    private ushort _padding0;
    private ushort _padding1;
    private ushort _padding2;
}

/// <summary>Four 64-bit words: <c>kvm_sregs.interrupt_bitmap</c>.</summary>
[InlineArray(4)]
public struct InterruptBitmap
{
    private ulong _element0;
}

/// <summary>Special registers of a vCPU (layout of <c>struct kvm_sregs</c>, 312 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
public struct KvmSpecialRegisters
{
    /// <summary>CS.</summary>
    public KvmSegment Cs;
    /// <summary>DS.</summary>
    public KvmSegment Ds;
    /// <summary>ES.</summary>
    public KvmSegment Es;
    /// <summary>FS.</summary>
    public KvmSegment Fs;
    /// <summary>GS.</summary>
    public KvmSegment Gs;
    /// <summary>SS.</summary>
    public KvmSegment Ss;
    /// <summary>TR.</summary>
    public KvmSegment Tr;
    /// <summary>LDTR.</summary>
    public KvmSegment Ldt;
    /// <summary>GDTR.</summary>
    public KvmDescriptorTable Gdt;
    /// <summary>IDTR.</summary>
    public KvmDescriptorTable Idt;
    /// <summary>CR0.</summary>
    public ulong Cr0;
    /// <summary>CR2.</summary>
    public ulong Cr2;
    /// <summary>CR3.</summary>
    public ulong Cr3;
    /// <summary>CR4.</summary>
    public ulong Cr4;
    /// <summary>CR8.</summary>
    public ulong Cr8;
    /// <summary>EFER.</summary>
    public ulong Efer;
    /// <summary>APIC base.</summary>
    public ulong ApicBase;
    /// <summary>Pending external interrupts.</summary>
    public InterruptBitmap InterruptBitmap;
}
