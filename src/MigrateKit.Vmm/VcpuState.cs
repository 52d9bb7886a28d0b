using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Runtime.InteropServices;
using MigrateKit.Kvm;

namespace MigrateKit.Vmm;

/// <summary>The saved architectural state of one vCPU.</summary>
/// <param name="Id">The vCPU id.</param>
/// <param name="Registers">General-purpose registers.</param>
/// <param name="SpecialRegisters">Segment, control and descriptor-table registers.</param>
/// <param name="Running">Whether the vCPU was running guest code (a vCPU without a program stays idle after a restore).</param>
public sealed record VcpuState(uint Id, KvmRegisters Registers, KvmSpecialRegisters SpecialRegisters, bool Running = true)
{
    private const uint Magic = 0x5356_4B4D; // "MKVS"
    private const ushort Version = 2;
    private static readonly int RegsSize = Marshal.SizeOf<KvmRegisters>();
    private static readonly int SregsSize = Marshal.SizeOf<KvmSpecialRegisters>();

    /// <summary>Serializes the states of several vCPUs: "MKVS", version, count, then each vCPU's id, running flag and registers.</summary>
    public static byte[] Serialize(IReadOnlyList<VcpuState> states)
    {
        ArgumentNullException.ThrowIfNull(states);
        int each = 5 + RegsSize + SregsSize;
        byte[] buffer = new byte[10 + (states.Count * each)];
        Span<byte> span = buffer;
        BinaryPrimitives.WriteUInt32LittleEndian(span, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(span[4..], Version);
        BinaryPrimitives.WriteInt32LittleEndian(span[6..], states.Count);
        int at = 10;
        foreach (VcpuState s in states)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], s.Id);
            span[at + 4] = s.Running ? (byte)1 : (byte)0;
            KvmRegisters regs = s.Registers;
            KvmSpecialRegisters sregs = s.SpecialRegisters;
            MemoryMarshal.AsBytes(new ReadOnlySpan<KvmRegisters>(in regs)).CopyTo(span[(at + 5)..]);
            MemoryMarshal.AsBytes(new ReadOnlySpan<KvmSpecialRegisters>(in sregs)).CopyTo(span[(at + 5 + RegsSize)..]);
            at += each;
        }

        return buffer;
    }

    /// <summary>Reads what <see cref="Serialize"/> wrote.</summary>
    /// <exception cref="FormatException">The bytes are not a vCPU state blob of a known version.</exception>
    public static IReadOnlyList<VcpuState> Deserialize(ReadOnlySpan<byte> data)
    {
        if (data.Length < 10 || BinaryPrimitives.ReadUInt32LittleEndian(data) != Magic)
        {
            throw new FormatException("Not a MicroVm vCPU state blob (bad magic or too short).");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(data[4..]);
        if (version != Version)
        {
            throw new FormatException($"vCPU state version {version} is not supported (expected {Version}).");
        }

        int count = BinaryPrimitives.ReadInt32LittleEndian(data[6..]);
        int each = 5 + RegsSize + SregsSize;
        if (count < 0 || count > 1024 || data.Length != 10 + (count * each))
        {
            throw new FormatException($"vCPU state blob of {data.Length} bytes does not hold {count} vCPUs.");
        }

        var states = new VcpuState[count];
        int at = 10;
        for (int i = 0; i < count; i++)
        {
            uint id = BinaryPrimitives.ReadUInt32LittleEndian(data[at..]);
            if (data[at + 4] > 1)
            {
                throw new FormatException($"vCPU {id}: running flag {data[at + 4]} is not 0 or 1.");
            }

            KvmRegisters regs = MemoryMarshal.Read<KvmRegisters>(data[(at + 5)..]);
            KvmSpecialRegisters sregs = MemoryMarshal.Read<KvmSpecialRegisters>(data[(at + 5 + RegsSize)..]);
            states[i] = new VcpuState(id, regs, sregs, data[at + 4] == 1);
            at += each;
        }

        return states;
    }
}
