using System;
using System.Collections.Generic;

namespace MigrateKit.Guests;

/// <summary>32-bit general-purpose registers, numbered as in the ModRM encoding.</summary>
internal enum Reg32 : byte
{
    Eax = 0,
    Ecx = 1,
    Edx = 2,
    Ebx = 3,
    Esp = 4,
    Ebp = 5,
    Esi = 6,
    Edi = 7,
}

/// <summary>A position in the code that jumps can name before it is placed.</summary>
internal sealed class Label
{
    internal int Position { get; set; } = -1;
}

/// <summary>
/// Emits the handful of 32-bit protected-mode x86 instructions the guest programs use. Every
/// method emits exactly one instruction (its encoding in the comment); jumps and calls are rel32 and are
/// patched when the label is bound, so code is position independent.
/// </summary>
internal sealed class X86Assembler
{
    private readonly List<byte> _code = new();
    private readonly List<(int At, Label Target)> _fixups = new();

    internal int Position => _code.Count;

    internal Label NewLabel() => new();

    internal void Bind(Label label) => label.Position = _code.Count;

    /// <summary>mov r32, imm32 — B8+r id.</summary>
    internal void MovImm(Reg32 r, uint imm)
    {
        Emit((byte)(0xB8 + (byte)r));
        Emit32(imm);
    }

    /// <summary>mov dst, src — 89 /r (mod 11).</summary>
    internal void Mov(Reg32 dst, Reg32 src) => Emit(0x89, ModRm(3, src, dst));

    /// <summary>mov byte [base + disp32], low byte of src — 88 /r (mod 10). src must be eax/ecx/edx/ebx (al..bl).</summary>
    internal void MovStoreByte(Reg32 @base, int disp, Reg32 src)
    {
        if ((byte)src > 3)
        {
            throw new ArgumentException("Only al, cl, dl and bl can be stored as bytes.", nameof(src));
        }

        EmitMem(0x88, src, @base, disp);
    }

    /// <summary>mov dword [base + disp32], src — 89 /r (mod 10).</summary>
    internal void MovStore(Reg32 @base, int disp, Reg32 src) => EmitMem(0x89, src, @base, disp);

    /// <summary>mov dst, dword [base + disp32] — 8B /r (mod 10).</summary>
    internal void MovLoad(Reg32 dst, Reg32 @base, int disp) => EmitMem(0x8B, dst, @base, disp);

    /// <summary>cmp dword [base + disp32], src — 39 /r (mod 10).</summary>
    internal void CmpMem(Reg32 @base, int disp, Reg32 src) => EmitMem(0x39, src, @base, disp);

    /// <summary>lea dst, [base + disp32] — 8D /r (mod 10).</summary>
    internal void Lea(Reg32 dst, Reg32 @base, int disp) => EmitMem(0x8D, dst, @base, disp);

    /// <summary>add r32, imm32 — 81 /0 id.</summary>
    internal void AddImm(Reg32 r, uint imm) => EmitGroup1(0, r, imm);

    /// <summary>or r32, imm32 — 81 /1 id.</summary>
    internal void OrImm(Reg32 r, uint imm) => EmitGroup1(1, r, imm);

    /// <summary>and r32, imm32 — 81 /4 id.</summary>
    internal void AndImm(Reg32 r, uint imm) => EmitGroup1(4, r, imm);

    /// <summary>cmp r32, imm32 — 81 /7 id.</summary>
    internal void CmpImm(Reg32 r, uint imm) => EmitGroup1(7, r, imm);

    /// <summary>xor dst, src — 31 /r (mod 11).</summary>
    internal void Xor(Reg32 dst, Reg32 src) => Emit(0x31, ModRm(3, src, dst));

    /// <summary>add dst, src — 01 /r (mod 11).</summary>
    internal void Add(Reg32 dst, Reg32 src) => Emit(0x01, ModRm(3, src, dst));

    /// <summary>inc r32 — 40+r (a one-byte form that exists only outside 64-bit mode).</summary>
    internal void Inc(Reg32 r) => Emit((byte)(0x40 + (byte)r));

    /// <summary>dec r32 — 48+r.</summary>
    internal void Dec(Reg32 r) => Emit((byte)(0x48 + (byte)r));

    /// <summary>shl r32, imm8 — C1 /4 ib.</summary>
    internal void ShlImm(Reg32 r, byte count) => Emit(0xC1, ModRm(3, (Reg32)4, r), count);

    /// <summary>shr r32, imm8 — C1 /5 ib.</summary>
    internal void ShrImm(Reg32 r, byte count) => Emit(0xC1, ModRm(3, (Reg32)5, r), count);

    /// <summary>rol r32, imm8 — C1 /0 ib.</summary>
    internal void RolImm(Reg32 r, byte count) => Emit(0xC1, ModRm(3, (Reg32)0, r), count);

    /// <summary>imul dst, src, imm32 — 69 /r id.</summary>
    internal void ImulImm(Reg32 dst, Reg32 src, uint imm)
    {
        Emit(0x69, ModRm(3, dst, src));
        Emit32(imm);
    }

    /// <summary>imul dst, src — 0F AF /r.</summary>
    internal void Imul(Reg32 dst, Reg32 src) => Emit(0x0F, 0xAF, ModRm(3, dst, src));

    /// <summary>mul src — F7 /4: edx:eax = eax * src (unsigned).</summary>
    internal void Mul(Reg32 src) => Emit(0xF7, ModRm(3, (Reg32)4, src));

    /// <summary>mov dx, imm16 — 66 BA iw.</summary>
    internal void MovDx(ushort port)
    {
        Emit(0x66, 0xBA);
        Emit((byte)port, (byte)(port >> 8));
    }

    /// <summary>out dx, al — EE.</summary>
    internal void OutDxAl() => Emit(0xEE);

    /// <summary>out dx, eax — EF.</summary>
    internal void OutDxEax() => Emit(0xEF);

    /// <summary>in al, dx — EC.</summary>
    internal void InAlDx() => Emit(0xEC);

    /// <summary>test al, imm8 — A8 ib: ZF is set when no bit of the mask is set in al.</summary>
    internal void TestAlImm(byte mask) => Emit(0xA8, mask);

    /// <summary>push r32 — 50+r.</summary>
    internal void Push(Reg32 r) => Emit((byte)(0x50 + (byte)r));

    /// <summary>pop r32 — 58+r.</summary>
    internal void Pop(Reg32 r) => Emit((byte)(0x58 + (byte)r));

    /// <summary>call rel32 — E8 cd: pushes the return address (the stack must be usable).</summary>
    internal void Call(Label target)
    {
        Emit(0xE8);
        Fixup(target);
    }

    /// <summary>ret — C3.</summary>
    internal void Ret() => Emit(0xC3);

    /// <summary>rep stosd — F3 AB: stores eax at [edi], ecx times, advancing edi by 4.</summary>
    internal void RepStosd() => Emit(0xF3, 0xAB);

    /// <summary>cld — FC: string instructions count upwards.</summary>
    internal void Cld() => Emit(0xFC);

    /// <summary>hlt — F4.</summary>
    internal void Hlt() => Emit(0xF4);

    /// <summary>jmp rel32 — E9 cd.</summary>
    internal void Jmp(Label target)
    {
        Emit(0xE9);
        Fixup(target);
    }

    /// <summary>jb rel32 (unsigned below) — 0F 82 cd.</summary>
    internal void Jb(Label target) => Jcc(0x82, target);

    /// <summary>je (jz) rel32 — 0F 84 cd.</summary>
    internal void Je(Label target) => Jcc(0x84, target);

    /// <summary>jne rel32 — 0F 85 cd.</summary>
    internal void Jne(Label target) => Jcc(0x85, target);

    /// <summary>jbe rel32 (unsigned below or equal) — 0F 86 cd.</summary>
    internal void Jbe(Label target) => Jcc(0x86, target);

    /// <summary>Returns the code with every jump resolved.</summary>
    internal byte[] ToArray()
    {
        byte[] code = _code.ToArray();
        foreach ((int at, Label target) in _fixups)
        {
            if (target.Position < 0)
            {
                throw new InvalidOperationException("A jump targets a label that was never bound.");
            }

            int rel = target.Position - (at + 4);
            BitConverter.TryWriteBytes(code.AsSpan(at, 4), rel);
        }

        return code;
    }

    private void Jcc(byte opcode, Label target)
    {
        Emit(0x0F, opcode);
        Fixup(target);
    }

    private void Fixup(Label target)
    {
        _fixups.Add((_code.Count, target));
        Emit32(0);
    }

    private void EmitGroup1(byte ext, Reg32 r, uint imm)
    {
        Emit(0x81, ModRm(3, (Reg32)ext, r));
        Emit32(imm);
    }

    private void EmitMem(byte opcode, Reg32 reg, Reg32 @base, int disp)
    {
        if (@base == Reg32.Esp)
        {
            throw new ArgumentException("[esp + disp] needs a SIB byte, which this assembler does not emit.", nameof(@base));
        }

        Emit(opcode, ModRm(2, reg, @base));
        Emit32((uint)disp);
    }

    private static byte ModRm(byte mod, Reg32 reg, Reg32 rm) => (byte)((mod << 6) | ((byte)reg << 3) | (byte)rm);

    private void Emit(params ReadOnlySpan<byte> bytes)
    {
        foreach (byte b in bytes)
        {
            _code.Add(b);
        }
    }

    private void Emit32(uint value) => Emit((byte)value, (byte)(value >> 8), (byte)(value >> 16), (byte)(value >> 24));
}
