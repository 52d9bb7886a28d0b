using System;
using System.Buffers.Binary;
using MigrateKit.Guests;

namespace MigrateKit.Vmm;

/// <summary>
/// The device state a <see cref="HostVm"/> migrates: its workload and its worker's progress.
/// </summary>
/// <remarks>
/// <code>
///  0 "MKHV" (u32)     4 version (u16)   6 kind (u8)   7 flags: 1 halted, 2 started
///  8 range start     16 range end      24 cold start  32 cold end           (u64 each)
/// 40 cold every (u32) 44 seed (u32)    48 pass (u32)  52 xorshift state (u32)
/// 56 position (u64)  64 failures       72 first failed page  80 pages written (i64 each)
/// 88 reserved, 0 (u64)                 — 96 bytes, little-endian
/// </code>
/// </remarks>
internal static class HostDeviceState
{
    internal const int Size = 96;
    private const uint Magic = 0x5648_4B4D; // "MKHV"
    private const ushort Version = 1;

    /// <summary>Encodes a workload, its worker's state and whether the worker had started.</summary>
    internal static byte[] Write(HostWorkload w, in HostWorkerState state, bool started)
    {
        byte[] b = new byte[Size];
        Span<byte> s = b;
        BinaryPrimitives.WriteUInt32LittleEndian(s, Magic);
        BinaryPrimitives.WriteUInt16LittleEndian(s[4..], Version);
        s[6] = (byte)w.Kind;
        s[7] = (byte)((state.Halted ? 1 : 0) | (started ? 2 : 0));
        BinaryPrimitives.WriteUInt64LittleEndian(s[8..], w.Range.Start);
        BinaryPrimitives.WriteUInt64LittleEndian(s[16..], w.Range.End);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], w.Cold.Start);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], w.Cold.End);
        BinaryPrimitives.WriteUInt32LittleEndian(s[40..], w.ColdEvery);
        BinaryPrimitives.WriteUInt32LittleEndian(s[44..], w.Seed);
        BinaryPrimitives.WriteUInt32LittleEndian(s[48..], state.Pass);
        BinaryPrimitives.WriteUInt32LittleEndian(s[52..], state.Rng);
        BinaryPrimitives.WriteUInt64LittleEndian(s[56..], state.Position);
        BinaryPrimitives.WriteInt64LittleEndian(s[64..], state.Failures);
        BinaryPrimitives.WriteInt64LittleEndian(s[72..], state.FirstFailedPage);
        BinaryPrimitives.WriteInt64LittleEndian(s[80..], state.PagesWritten);
        BinaryPrimitives.WriteUInt64LittleEndian(s[88..], 0);
        return b;
    }

    /// <summary>Decodes what <see cref="Write"/> encoded; the workload and progress are checked by <see cref="CheckWorkload"/> and <see cref="CheckFits"/>.</summary>
    /// <exception cref="FormatException">The bytes are not a HostVm state of this version.</exception>
    internal static (HostWorkload Workload, HostWorkerState State) Read(ReadOnlySpan<byte> state)
    {
        if (state.Length != Size || BinaryPrimitives.ReadUInt32LittleEndian(state) != Magic)
        {
            throw new FormatException($"Not a HostVm device state ({state.Length} bytes; expected {Size} starting with \"MKHV\").");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(state[4..]);
        if (version != Version)
        {
            throw new FormatException($"HostVm device state version {version} is not supported (expected {Version}).");
        }

        var kind = (HostWorkloadKind)state[6];
        if (!Enum.IsDefined(kind))
        {
            throw new FormatException($"Unknown workload kind {state[6]}.");
        }

        var w = new HostWorkload(
            kind,
            new GuestRange(BinaryPrimitives.ReadUInt64LittleEndian(state[8..]), BinaryPrimitives.ReadUInt64LittleEndian(state[16..])),
            new GuestRange(BinaryPrimitives.ReadUInt64LittleEndian(state[24..]), BinaryPrimitives.ReadUInt64LittleEndian(state[32..])),
            BinaryPrimitives.ReadUInt32LittleEndian(state[40..]),
            BinaryPrimitives.ReadUInt32LittleEndian(state[44..]));
        var progress = new HostWorkerState
        {
            Halted = (state[7] & 1) != 0,
            Pass = BinaryPrimitives.ReadUInt32LittleEndian(state[48..]),
            Rng = BinaryPrimitives.ReadUInt32LittleEndian(state[52..]),
            Position = BinaryPrimitives.ReadUInt64LittleEndian(state[56..]),
            Failures = BinaryPrimitives.ReadInt64LittleEndian(state[64..]),
            FirstFailedPage = BinaryPrimitives.ReadInt64LittleEndian(state[72..]),
            PagesWritten = BinaryPrimitives.ReadInt64LittleEndian(state[80..]),
        };
        return (w, progress);
    }

    /// <summary>Checks that a decoded workload is one a HostVm could have run.</summary>
    /// <exception cref="FormatException">The workload is invalid.</exception>
    internal static void CheckWorkload(HostWorkload w)
    {
        try
        {
            HostWorkload.Checked(w);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"The device state's workload is invalid: {ex.Message}", ex);
        }
    }

    /// <summary>Checks that the progress lies inside the workload's pass.</summary>
    /// <exception cref="FormatException">The pass is 0 or the position past the end of a pass.</exception>
    internal static void CheckFits(HostWorkload w, in HostWorkerState s)
    {
        ulong passLength = HostWorkloadSteps.MaxPassLength(w);
        if (s.Pass == 0 || s.Position >= passLength)
        {
            throw new FormatException($"The device state's progress (pass {s.Pass}, position {s.Position}) does not fit its workload ({passLength} pages per pass).");
        }
    }
}
