using System;
using System.Buffers.Binary;

namespace MigrateKit.Guests;

/// <summary>A guest program whose rewritten pages share nothing with their previous contents.</summary>
public static partial class GuestPrograms
{
    /// <summary>
    /// Rewrites every dword of every page of <c>[start, end)</c> with the next value of a 32-bit
    /// xorshift generator (13, 17, 5) seeded with <paramref name="seed"/>, page after page, pass
    /// after pass, and reports the pass number at the end of each pass. A page re-sent during a
    /// migration differs from its previous copy in nearly every byte, so deltas (QEMU's xbzrle)
    /// save nothing on it. Stores are plain <c>mov</c>s: string instructions are emulated slowly
    /// by some hypervisors, which would make the guest write far less than it means to.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not page-aligned, or <paramref name="seed"/> is 0 (xorshift would stay at 0).</exception>
    public static GuestProgram RandomBytes(ulong start, ulong end, uint seed, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));
        if (seed == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(seed), "xorshift needs a non-zero seed.");
        }

        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), dword = a.NewLabel();
        a.MovImm(Reg32.Esi, seed);                  // esi = xorshift state
        a.Xor(Reg32.Ebx, Reg32.Ebx);                // ebx = 0: passes completed
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                           // ebx = number of this pass
        a.MovImm(Reg32.Edi, (uint)start);           // edi = next dword
        a.Bind(dword);
        EmitXorshift(a);                            // esi = next x
        a.MovStore(Reg32.Edi, 0, Reg32.Esi);        // [edi] = x
        a.AddImm(Reg32.Edi, 4);
        a.Mov(Reg32.Eax, Reg32.Edi);                // until edi reaches the next page
        a.AndImm(Reg32.Eax, PageSize - 1);
        a.Jne(dword);
        EmitPace(a, p);                             // pace port: one page written
        a.CmpImm(Reg32.Edi, (uint)end);
        a.Jb(dword);                                // until edi reaches end
        status.Report(Reg32.Ebx);                   // status port: pass number
        a.Jmp(pass);
        return Build("randombytes", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>
    /// Fills <paramref name="destination"/> with what <see cref="RandomBytes"/> writes in its first
    /// pass over a range of that length with <paramref name="seed"/>: the xorshift values as
    /// little-endian dwords. A host can load it as a guest's memory when writing it from the
    /// guest would take too long (an emulated vCPU writes about 0.5 MiB of it per second).
    /// </summary>
    /// <exception cref="ArgumentException">The length is not a multiple of 4.</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="seed"/> is 0.</exception>
    public static void RandomBytesContent(Span<byte> destination, uint seed)
    {
        if (destination.Length % 4 != 0)
        {
            throw new ArgumentException($"The length ({destination.Length}) must be a multiple of 4: the guest writes whole dwords.", nameof(destination));
        }

        if (seed == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(seed), "xorshift needs a non-zero seed.");
        }

        uint x = seed;
        for (int i = 0; i < destination.Length; i += 4)
        {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            BinaryPrimitives.WriteUInt32LittleEndian(destination[i..], x);
        }
    }
}
