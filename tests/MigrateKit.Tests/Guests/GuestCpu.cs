using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Numerics;
using System.Text;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>
/// Executes the 32-bit flat-mode subset X86Assembler emits, tracking ZF and CF (all the
/// programs branch on). Fails on any other opcode, so new instructions need a decoder here too.
/// </summary>
internal sealed class GuestCpu
{
    /// <summary>A port write the guest made.</summary>
    internal readonly record struct PortWrite(ushort Port, int Size, uint Value);

    private const int StepLimit = 50_000_000;
    private readonly uint[] _r = new uint[8];
    private readonly GuestProgram _program;
    private readonly byte[] _pristine;
    private uint _eip;
    private bool _zf;
    private bool _cf;
    private bool _halted;
    private bool _justWrote;
    private bool _transmitterEmpty;

    internal GuestCpu(GuestProgram program, ulong memorySize)
    {
        _program = program;
        Memory = new byte[memorySize];
        program.Code.CopyTo(Memory, (int)program.LoadAddress);
        _pristine = (byte[])Memory.Clone();
        _eip = (uint)program.LoadAddress;
        _r[4] = StackTop;
    }

    /// <summary>The stack grows down from the code, as under BootSector; only serial-text reports use it.</summary>
    internal uint StackTop => (uint)_program.LoadAddress;

    /// <summary>What the UART's line status register reads, by read number (0, 1, …): THR empty unless told.</summary>
    internal Func<int, byte> LineStatus { get; init; } = _ => 0x60;

    internal int LineStatusReads { get; private set; }

    /// <summary>The text written to a serial-text status port.</summary>
    internal string SerialText => Encoding.ASCII.GetString(Outs.Where(o => o.Port == _program.Ports.Status && o.Size == 1).Select(o => (byte)o.Value).ToArray());

    /// <summary>The complete lines of <see cref="SerialText"/>, parsed as hex.</summary>
    internal List<uint> SerialValues => SerialText.Split('\n')[..^1].Select(l => uint.Parse(l, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture)).ToList();

    internal byte[] Memory { get; }

    internal List<PortWrite> Outs { get; } = new();

    internal List<uint> StatusValues => Outs.Where(o => o.Port == _program.Ports.Status).Select(o => o.Value).ToList();

    internal uint ReadDword(uint address) => BinaryPrimitives.ReadUInt32LittleEndian(Memory.AsSpan((int)address));

    internal void RunUntilStatus(uint value)
    {
        for (int i = 0; i < StepLimit; i++)
        {
            Step();
            PortWrite last = Outs.Count > 0 ? Outs[^1] : default;
            if (last.Port == _program.Ports.Status && last.Value == value && _justWrote)
            {
                return;
            }
        }

        Assert.Fail($"status {value} never came");
    }

    /// <summary>Runs until the serial text has <paramref name="lines"/> complete lines.</summary>
    internal void RunUntilLine(int lines)
    {
        for (int i = 0; i < StepLimit; i++)
        {
            Step();
            if (_justWrote && Outs[^1].Value == '\n' && SerialText.Count(c => c == '\n') == lines)
            {
                return;
            }
        }

        Assert.Fail($"line {lines} never came");
    }

    internal void RunUntilHalt()
    {
        for (int i = 0; i < StepLimit && !_halted; i++)
        {
            Step();
        }

        Assert.IsTrue(_halted, "the guest did not halt");
    }

    /// <summary>Every byte outside the working set and the code is as loaded.</summary>
    internal void AssertUntouchedOutside(ulong start, ulong end)
    {
        // The serial-text subroutine's stack frame (return address and three saved registers).
        int frame = (int)StackTop - 16;
        Memory.AsSpan(frame, 16).CopyTo(_pristine.AsSpan(frame));
        Assert.IsTrue(Memory.AsSpan(0, (int)start).SequenceEqual(_pristine.AsSpan(0, (int)start)), "memory below the range");
        Assert.IsTrue(Memory.AsSpan((int)end).SequenceEqual(_pristine.AsSpan((int)end)), "memory above the range");
    }

    private void Step()
    {
        _justWrote = false;
        if (_halted)
        {
            return;
        }

        byte op = Fetch8();
        switch (op)
        {
            case >= 0xB8 and <= 0xBF:
                _r[op - 0xB8] = Fetch32();
                break;
            case 0x89:
            {
                (int mod, int reg, int rm) = ModRm();
                if (mod == 3)
                {
                    _r[rm] = _r[reg];
                }
                else
                {
                    Write32(Address(mod, rm), _r[reg]);
                }

                break;
            }

            case 0x88:
            {
                (int mod, int reg, int rm) = ModRm();
                Assert.IsLessThan(4, reg, "byte register");
                uint address = Address(mod, rm);
                CheckNotCode(address, 1);
                Memory[address] = (byte)_r[reg];
                break;
            }

            case 0x8B:
            {
                (int mod, int reg, int rm) = ModRm();
                _r[reg] = Read32(Address(mod, rm));
                break;
            }

            case 0x8D:
            {
                (int mod, int reg, int rm) = ModRm();
                _r[reg] = Address(mod, rm);
                break;
            }

            case 0x39:
            {
                (int mod, int reg, int rm) = ModRm();
                Compare(Read32(Address(mod, rm)), _r[reg]);
                break;
            }

            case 0x31:
            {
                (_, int reg, int rm) = ModRm();
                _r[rm] ^= _r[reg];
                Logic(_r[rm]);
                break;
            }

            case 0x01:
            {
                (_, int reg, int rm) = ModRm();
                Add(rm, _r[reg]);
                break;
            }

            case 0x81:
            {
                (int mod, int ext, int rm) = ModRm();
                Assert.AreEqual(3, mod);
                uint imm = Fetch32();
                switch (ext)
                {
                    case 0:
                        Add(rm, imm);
                        break;
                    case 1:
                        _r[rm] |= imm;
                        Logic(_r[rm]);
                        break;
                    case 4:
                        _r[rm] &= imm;
                        Logic(_r[rm]);
                        break;
                    case 7:
                        Compare(_r[rm], imm);
                        break;
                    default:
                        Assert.Fail($"81 /{ext}");
                        break;
                }

                break;
            }

            case >= 0x40 and <= 0x47:
                _zf = ++_r[op - 0x40] == 0;
                break;
            case >= 0x48 and <= 0x4F:
                _zf = --_r[op - 0x48] == 0;
                break;
            case 0xC1:
            {
                (_, int ext, int rm) = ModRm();
                int count = Fetch8() & 31;
                _r[rm] = ext switch
                {
                    0 => BitOperations.RotateLeft(_r[rm], count),
                    4 => _r[rm] << count,
                    5 => _r[rm] >> count,
                    _ => throw new AssertFailedException($"C1 /{ext}"),
                };
                break;
            }

            case 0x69:
            {
                (_, int reg, int rm) = ModRm();
                _r[reg] = unchecked(_r[rm] * Fetch32());
                break;
            }

            case 0xF7:
            {
                (_, int ext, int rm) = ModRm();
                Assert.AreEqual(4, ext, "F7 /4 (mul)");
                ulong product = (ulong)_r[0] * _r[rm];
                _r[0] = (uint)product;
                _r[2] = (uint)(product >> 32);
                break;
            }

            case 0x0F:
                TwoByte(Fetch8());
                break;
            case 0x66:
                Assert.AreEqual(0xBA, Fetch8(), "only mov dx, imm16 takes an operand-size prefix");
                _r[2] = (_r[2] & 0xFFFF_0000) | Fetch8() | ((uint)Fetch8() << 8);
                break;
            case 0xEE:
                if (_program.Ports.SerialText && (ushort)_r[2] == _program.Ports.Status)
                {
                    Assert.IsTrue(_transmitterEmpty, "a character written while the transmitter was full");
                    _transmitterEmpty = false;
                }

                Out(1, _r[0] & 0xFF);
                break;
            case 0xEC:
            {
                Assert.AreEqual(_program.Ports.Status + 5, (int)(ushort)_r[2], "only the line status register is read");
                byte lsr = LineStatus(LineStatusReads++);
                _transmitterEmpty = (lsr & 0x20) != 0;
                _r[0] = (_r[0] & 0xFFFF_FF00) | lsr;
                break;
            }

            case 0xA8:
                Logic(_r[0] & 0xFF & Fetch8());
                break;
            case >= 0x50 and <= 0x57:
                Push(_r[op - 0x50]);
                break;
            case >= 0x58 and <= 0x5F:
                _r[op - 0x58] = Pop();
                break;
            case 0xE8:
            {
                int rel = (int)Fetch32();
                Push(_eip);
                _eip = unchecked((uint)(_eip + rel));
                break;
            }

            case 0xC3:
                _eip = Pop();
                break;
            case 0xEF:
                Out(4, _r[0]);
                break;
            case 0xF3:
                Assert.AreEqual(0xAB, Fetch8(), "rep stosd");
                for (; _r[1] != 0; _r[1]--)
                {
                    Write32(_r[7], _r[0]);
                    _r[7] += 4;
                }

                break;
            case 0xFC:
                break;
            case 0xF4:
                _halted = true;
                break;
            case 0xE9:
                Jump(true);
                break;
            default:
                Assert.Fail($"opcode 0x{op:X2} at 0x{_eip - 1:x}");
                break;
        }
    }

    private void TwoByte(byte op)
    {
        switch (op)
        {
            case 0xAF:
            {
                (_, int reg, int rm) = ModRm();
                _r[reg] = unchecked(_r[reg] * _r[rm]);
                break;
            }

            case 0x82:
                Jump(_cf);
                break;
            case 0x84:
                Jump(_zf);
                break;
            case 0x85:
                Jump(!_zf);
                break;
            case 0x86:
                Jump(_cf || _zf);
                break;
            default:
                Assert.Fail($"opcode 0F {op:X2}");
                break;
        }
    }

    private void Jump(bool taken)
    {
        int rel = (int)Fetch32();
        if (taken)
        {
            _eip = unchecked((uint)(_eip + rel));
        }
    }

    private void Push(uint value)
    {
        _r[4] -= 4;
        Assert.IsGreaterThanOrEqualTo(StackTop - 64, _r[4], "the stack grows deeper than a report needs");
        Write32(_r[4], value);
    }

    private uint Pop()
    {
        uint value = Read32(_r[4]);
        _r[4] += 4;
        return value;
    }

    private void Out(int size, uint value)
    {
        Outs.Add(new PortWrite((ushort)_r[2], size, value));
        _justWrote = true;
    }

    private void Compare(uint a, uint b)
    {
        _zf = a == b;
        _cf = a < b;
    }

    private void Logic(uint result)
    {
        _zf = result == 0;
        _cf = false;
    }

    private void Add(int rm, uint value)
    {
        uint before = _r[rm];
        _r[rm] = unchecked(before + value);
        _zf = _r[rm] == 0;
        _cf = _r[rm] < before;
    }

    private uint Address(int mod, int rm)
    {
        Assert.AreEqual(2, mod, "memory operands are [base + disp32]");
        Assert.AreNotEqual(4, rm, "no SIB");
        return unchecked(_r[rm] + Fetch32());
    }

    private (int Mod, int Reg, int Rm) ModRm()
    {
        byte b = Fetch8();
        return (b >> 6, (b >> 3) & 7, b & 7);
    }

    private byte Fetch8() => Memory[_eip++];

    private uint Fetch32()
    {
        uint v = Read32(_eip);
        _eip += 4;
        return v;
    }

    private uint Read32(uint address) => BinaryPrimitives.ReadUInt32LittleEndian(Memory.AsSpan((int)address, 4));

    private void CheckNotCode(uint address, uint length) =>
        Assert.IsFalse(_program.CodeRange.Overlaps(new GuestRange(address, address + (ulong)length)), $"write over the code at 0x{address:x}");

    private void Write32(uint address, uint value)
    {
        CheckNotCode(address, 4);
        BinaryPrimitives.WriteUInt32LittleEndian(Memory.AsSpan((int)address, 4), value);
    }
}
