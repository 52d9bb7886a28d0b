using System;

namespace MigrateKit.Guests;

/// <summary>Guest programs whose dirtying changes while they run: a working set that grows, and bursts between quiet stretches.</summary>
public static partial class GuestPrograms
{
    /// <summary>
    /// Writes one byte per page of <c>[start, earlyEnd)</c> on passes 1 to <paramref name="growAfter"/>,
    /// then of the whole <c>[start, end)</c> on every later pass: a working set that grows part-way
    /// through a migration, so a forecast made on the early rounds no longer holds later. The byte
    /// written is the low byte of the pass number.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The ranges are not page-aligned, <paramref name="earlyEnd"/> is not inside <c>(start, end]</c>, or <paramref name="growAfter"/> is 0.</exception>
    public static GuestProgram Phased(ulong start, ulong end, ulong earlyEnd, uint growAfter, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));
        CheckRange(start, earlyEnd, nameof(earlyEnd));
        if (earlyEnd > end)
        {
            throw new ArgumentOutOfRangeException(nameof(earlyEnd), $"The early set [0x{start:x}, 0x{earlyEnd:x}) must lie within [0x{start:x}, 0x{end:x}).");
        }

        ArgumentOutOfRangeException.ThrowIfZero(growAfter);
        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), early = a.NewLabel(), report = a.NewLabel();
        a.Xor(Reg32.Ebx, Reg32.Ebx);               // ebx = 0: passes completed
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                           // ebx = number of this pass
        a.CmpImm(Reg32.Ebx, growAfter);
        a.Jbe(early);                               // passes 1 to growAfter: the early set
        EmitPagePass(a, p, start, end);             // later passes: the whole set
        a.Jmp(report);
        a.Bind(early);
        EmitPagePass(a, p, start, earlyEnd);
        a.Bind(report);
        status.Report(Reg32.Ebx);                   // status port: pass number
        a.Jmp(pass);
        return Build("phased", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>
    /// Writes one byte per page of <c>[start, end)</c> in a burst, then stays quiet for
    /// <paramref name="quietTicks"/> ticks of the pace port with no write (as long as a burst of as
    /// many pages would take at the same pace), pass after pass: a dirty rate that swings from round
    /// to round. The byte written is the low byte of the pass number.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException">The range is not page-aligned or <paramref name="quietTicks"/> is 0.</exception>
    public static GuestProgram Bursty(ulong start, ulong end, uint quietTicks, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));
        ArgumentOutOfRangeException.ThrowIfZero(quietTicks);
        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), quiet = a.NewLabel();
        a.Xor(Reg32.Ebx, Reg32.Ebx);               // ebx = 0: passes completed
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                           // ebx = number of this pass
        EmitPagePass(a, p, start, end);             // the burst: every page once
        a.MovImm(Reg32.Ecx, quietTicks);            // ecx = quiet ticks left
        a.Bind(quiet);
        EmitPace(a, p);                             // a tick of the pace port, no write
        a.Dec(Reg32.Ecx);
        a.Jne(quiet);
        status.Report(Reg32.Ebx);                   // status port: pass number
        a.Jmp(pass);
        return Build("bursty", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>Emits one write of <c>bl</c> per page of <c>[start, end)</c>, each followed by a pace tick; clobbers edi, eax and edx.</summary>
    private static void EmitPagePass(X86Assembler a, GuestPorts p, ulong start, ulong end)
    {
        Label page = a.NewLabel();
        a.MovImm(Reg32.Edi, (uint)start);          // edi = first page
        a.Bind(page);
        a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx);   // [edi] = bl: dirty the page
        EmitPace(a, p);
        a.AddImm(Reg32.Edi, PageSize);
        a.CmpImm(Reg32.Edi, (uint)end);
        a.Jb(page);
    }
}
