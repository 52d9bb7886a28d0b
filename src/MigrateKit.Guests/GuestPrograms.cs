using System;
using MigrateKit.Memory;

namespace MigrateKit.Guests;

/// <summary>
/// Guest programs that dirty memory in known patterns, emitted as x86 machine code from C#.
/// Each keeps a pass counter in <c>ebx</c>/<c>ebp</c> and reports it on the status port at the
/// end of each pass (as a dword, or as a line of text with <see cref="GuestPorts.SerialText"/>);
/// each writes the pace port after every page it writes.
/// </summary>
public static partial class GuestPrograms
{
    /// <summary>The default load address: page 1 (page 0 stays untouched).</summary>
    public const ulong DefaultLoadAddress = 0x1000;

    // The guest walks memory in the pages the host tracks.
    private const uint PageSize = (uint)GuestMemoryLayout.PageSize;

    /// <summary>Knuth's multiplicative constant, used to derive per-page values.</summary>
    private const uint GoldenRatio = 0x9E37_79B1;

    /// <summary>
    /// Writes one byte per <paramref name="stride"/> bytes of <c>[start, end)</c>, pass after pass.
    /// The byte written is the low byte of the pass number (1, 2, …).
    /// </summary>
    public static GuestProgram Sweep(ulong start, ulong end, uint stride = PageSize, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));
        if (stride == 0 || end + stride > 1UL << 32)
        {
            throw new ArgumentOutOfRangeException(nameof(stride), stride, "The stride must be non-zero and end + stride must stay below 4 GiB.");
        }

        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), page = a.NewLabel();
        a.Xor(Reg32.Ebx, Reg32.Ebx);              // ebx = 0: passes completed
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                          // ebx = number of this pass
        a.MovImm(Reg32.Edi, (uint)start);          // edi = first address
        a.Bind(page);
        a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx);   // [edi] = bl: dirty the page
        EmitPace(a, p);                            // pace port: one page written
        a.AddImm(Reg32.Edi, stride);               // next address
        a.CmpImm(Reg32.Edi, (uint)end);
        a.Jb(page);                                // until edi reaches end
        status.Report(Reg32.Ebx);                  // status port: pass number
        a.Jmp(pass);
        return Build("sweep", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>
    /// Rewrites every page of the hot range on every pass, and every page of the cold range on
    /// pass 1 and then every <paramref name="coldEvery"/> passes.
    /// </summary>
    public static GuestProgram HotCold(GuestRange hot, GuestRange cold, uint coldEvery, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(hot.Start, hot.End, nameof(hot));
        CheckRange(cold.Start, cold.End, nameof(cold));
        ArgumentOutOfRangeException.ThrowIfZero(coldEvery);
        if (hot.Overlaps(cold))
        {
            throw new ArgumentException("The hot and cold ranges overlap.", nameof(cold));
        }

        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), hotPage = a.NewLabel(), coldPage = a.NewLabel(), skipCold = a.NewLabel();
        a.Xor(Reg32.Ebx, Reg32.Ebx);               // ebx = 0: passes completed
        a.MovImm(Reg32.Ecx, 1);                     // ecx = passes until the next cold sweep (1: now)
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                           // ebx = number of this pass
        a.MovImm(Reg32.Edi, (uint)hot.Start);       // edi = first hot page
        a.Bind(hotPage);
        a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx);    // [edi] = bl
        EmitPace(a, p);
        a.AddImm(Reg32.Edi, PageSize);
        a.CmpImm(Reg32.Edi, (uint)hot.End);
        a.Jb(hotPage);                              // every hot page
        a.Dec(Reg32.Ecx);                           // one pass closer to a cold sweep
        a.Jne(skipCold);
        a.MovImm(Reg32.Ecx, coldEvery);             // re-arm the countdown
        a.MovImm(Reg32.Edi, (uint)cold.Start);      // edi = first cold page
        a.Bind(coldPage);
        a.MovStoreByte(Reg32.Edi, 0, Reg32.Ebx);    // [edi] = bl
        EmitPace(a, p);
        a.AddImm(Reg32.Edi, PageSize);
        a.CmpImm(Reg32.Edi, (uint)cold.End);
        a.Jb(coldPage);                             // every cold page
        a.Bind(skipCold);
        status.Report(Reg32.Ebx);                   // status port: pass number
        a.Jmp(pass);
        return Build("hotcold", a, status, loadAddress, p, [hot, cold]);
    }

    /// <summary>
    /// Writes one byte to a pseudo-random page of <c>[start, end)</c> at a time, the page chosen by
    /// a 32-bit xorshift generator inside the guest. A "pass" is as many writes as the range has pages.
    /// </summary>
    public static GuestProgram RandomWrites(ulong start, ulong end, uint seed, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));
        if (seed == 0)
        {
            throw new ArgumentOutOfRangeException(nameof(seed), "xorshift needs a non-zero seed.");
        }

        uint pages = (uint)((end - start) / PageSize);
        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), write = a.NewLabel();
        a.MovImm(Reg32.Esi, seed);                  // esi = xorshift state
        a.MovImm(Reg32.Ebp, pages);                 // ebp = pages in the range
        a.Xor(Reg32.Ebx, Reg32.Ebx);                // ebx = 0: passes completed
        a.Bind(pass);
        a.Inc(Reg32.Ebx);                           // ebx = number of this pass
        a.Mov(Reg32.Ecx, Reg32.Ebp);                // ecx = writes left in this pass
        a.Bind(write);
        EmitXorshift(a);                            // esi = next x
        a.Mov(Reg32.Eax, Reg32.Esi);                // edx:eax = x * pages, so edx = page in [0, pages)
        a.Mul(Reg32.Ebp);
        a.ShlImm(Reg32.Edx, 12);                    // edx = page * 4096
        a.AddImm(Reg32.Edx, (uint)start);           // edx = address of the page
        a.MovStoreByte(Reg32.Edx, 0, Reg32.Ebx);    // [edx] = bl
        EmitPace(a, p);                             // (clobbers dx, no longer needed)
        a.Dec(Reg32.Ecx);
        a.Jne(write);                               // until the pass's writes are done
        status.Report(Reg32.Ebx);                   // status port: pass number
        a.Jmp(pass);
        return Build("random", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>
    /// A self-checking writer. On pass <c>n</c> (1, 2, …) it checks that each page of
    /// <c>[start, end)</c> still holds the value of pass <c>n - 1</c> at offsets 0, 2048 and 4092
    /// (zero before pass 1), reports a mismatch as <c>0x80000000 | page index</c> on the status port,
    /// then stores the value of pass <c>n</c> there. The value for page <c>i</c> in pass <c>n</c> is
    /// <c>n * ((i * 0x9E3779B1) | 1)</c> (mod 2^32): non-zero for every pass, different per page.
    /// A VM that resumes elsewhere on memory that is not exactly the source's fails these checks.
    /// </summary>
    public static GuestProgram Verifier(ulong start, ulong end, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));

        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label pass = a.NewLabel(), page = a.NewLabel(), store = a.NewLabel(), fail = a.NewLabel();
        a.Xor(Reg32.Ebp, Reg32.Ebp);                // ebp = passes completed (= the previous pass)
        a.Bind(pass);
        a.Lea(Reg32.Ecx, Reg32.Ebp, 1);             // ecx = number of this pass
        a.MovImm(Reg32.Edi, (uint)start);           // edi = page address
        a.Xor(Reg32.Esi, Reg32.Esi);                // esi = page index
        a.Bind(page);
        a.ImulImm(Reg32.Ebx, Reg32.Esi, GoldenRatio); // ebx = i * K
        a.OrImm(Reg32.Ebx, 1);                      // ebx = (i * K) | 1: the page's odd multiplier
        a.Mov(Reg32.Eax, Reg32.Ebx);
        a.Imul(Reg32.Eax, Reg32.Ebp);               // eax = value of the previous pass
        a.CmpMem(Reg32.Edi, 0, Reg32.Eax);          // check offset 0
        a.Jne(fail);
        a.CmpMem(Reg32.Edi, 2048, Reg32.Eax);       // check offset 2048
        a.Jne(fail);
        a.CmpMem(Reg32.Edi, 4092, Reg32.Eax);       // check offset 4092
        a.Jne(fail);
        a.Bind(store);
        a.Imul(Reg32.Ebx, Reg32.Ecx);               // ebx = value of this pass
        a.MovStore(Reg32.Edi, 0, Reg32.Ebx);        // store at offsets 0, 2048, 4092
        a.MovStore(Reg32.Edi, 2048, Reg32.Ebx);
        a.MovStore(Reg32.Edi, 4092, Reg32.Ebx);
        EmitPace(a, p);
        a.AddImm(Reg32.Edi, PageSize);              // next page
        a.Inc(Reg32.Esi);
        a.CmpImm(Reg32.Edi, (uint)end);
        a.Jb(page);
        a.Inc(Reg32.Ebp);                           // pass complete
        status.Report(Reg32.Ebp);                   // status port: pass number
        a.Jmp(pass);
        a.Bind(fail);
        a.Mov(Reg32.Eax, Reg32.Esi);                // eax = 0x80000000 | page index
        a.OrImm(Reg32.Eax, GuestPorts.FailureFlag);
        status.Report(Reg32.Eax);                   // status port: failure (ebx, ecx, esi, edi survive)
        a.Jmp(store);                               // repair the page and go on
        return Build("verify", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>
    /// Makes every page of <c>[start, end)</c> non-zero once: writes one dword per page, at offset
    /// 0, the value <see cref="VerifierValue"/> gives page <c>i</c> for pass 1 (the rest of the page
    /// keeps what it had), then reports pass 1 and halts. One store per page is what makes a page
    /// count as non-zero for QEMU's zero-page check and MigrateKit's alike; filling whole pages
    /// would need a string instruction, which some hosts emulate (~0.55 ms per page) instead of running.
    /// </summary>
    public static GuestProgram Fill(ulong start, ulong end, GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        CheckRange(start, end, nameof(start));

        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label page = a.NewLabel(), halt = a.NewLabel();
        a.MovImm(Reg32.Edi, (uint)start);           // edi = page address
        a.Xor(Reg32.Esi, Reg32.Esi);                // esi = page index
        a.Bind(page);
        a.ImulImm(Reg32.Eax, Reg32.Esi, GoldenRatio); // eax = (i * K) | 1: non-zero
        a.OrImm(Reg32.Eax, 1);
        a.MovStore(Reg32.Edi, 0, Reg32.Eax);        // [edi] = eax: the page is non-zero
        EmitPace(a, p);
        a.AddImm(Reg32.Edi, PageSize);              // next page
        a.Inc(Reg32.Esi);
        a.CmpImm(Reg32.Edi, (uint)end);
        a.Jb(page);
        a.MovImm(Reg32.Ebx, 1);
        status.Report(Reg32.Ebx);                   // status port: pass 1 done
        a.Bind(halt);
        a.Hlt();                                    // idle for good
        a.Jmp(halt);
        return Build("fill", a, status, loadAddress, p, [new GuestRange(start, end)]);
    }

    /// <summary>Halts at once and forever: an idle guest.</summary>
    public static GuestProgram Idle(GuestPorts? ports = null, ulong loadAddress = DefaultLoadAddress)
    {
        GuestPorts p = ports ?? GuestPorts.Default;
        var a = new X86Assembler();
        var status = new StatusWriter(a, p);
        Label halt = a.NewLabel();
        a.Bind(halt);
        a.Hlt();
        a.Jmp(halt);
        return Build("idle", a, status, loadAddress, p, []);
    }

    /// <summary>The value <see cref="Verifier"/> stores in page <paramref name="pageIndex"/> on pass <paramref name="pass"/>.</summary>
    public static uint VerifierValue(uint pageIndex, uint pass) => unchecked(pass * ((pageIndex * GoldenRatio) | 1));

    /// <summary>Emits one step of xorshift32 (13, 17, 5) on the state in esi; clobbers eax.</summary>
    private static void EmitXorshift(X86Assembler a)
    {
        a.Mov(Reg32.Eax, Reg32.Esi);                // x ^= x << 13
        a.ShlImm(Reg32.Eax, 13);
        a.Xor(Reg32.Esi, Reg32.Eax);
        a.Mov(Reg32.Eax, Reg32.Esi);                // x ^= x >> 17
        a.ShrImm(Reg32.Eax, 17);
        a.Xor(Reg32.Esi, Reg32.Eax);
        a.Mov(Reg32.Eax, Reg32.Esi);                // x ^= x << 5
        a.ShlImm(Reg32.Eax, 5);
        a.Xor(Reg32.Esi, Reg32.Eax);
    }

    private static void EmitPace(X86Assembler a, GuestPorts p)
    {
        if (p.Pace is ushort pace)
        {
            a.MovDx(pace);
            a.OutDxAl();
        }
    }

    /// <summary>
    /// Emits status reports. A dword report is <c>out dx, eax</c> (clobbers eax and edx). A
    /// serial-text report calls one hex-printing subroutine, appended after the program's code by
    /// <see cref="EmitSubroutines"/>; it clobbers only eax.
    /// </summary>
    private sealed class StatusWriter
    {
        private readonly X86Assembler _a;
        private readonly GuestPorts _ports;
        private readonly Label _printHex;
        private bool _called;

        internal StatusWriter(X86Assembler a, GuestPorts ports)
        {
            if (ports.SerialText && ports.Status > ushort.MaxValue - GuestPorts.LineStatusOffset)
            {
                throw new ArgumentException($"A serial-text status port needs its line status register at 0x{ports.Status:x} + {GuestPorts.LineStatusOffset}, above port 0xffff.", nameof(ports));
            }

            _a = a;
            _ports = ports;
            _printHex = a.NewLabel();
        }

        /// <summary>Reports <paramref name="value"/> on the status port.</summary>
        internal void Report(Reg32 value)
        {
            if (value != Reg32.Eax)
            {
                _a.Mov(Reg32.Eax, value);
            }

            if (_ports.SerialText)
            {
                _a.Call(_printHex);
                _called = true;
            }
            else
            {
                _a.MovDx(_ports.Status);
                _a.OutDxEax();
            }
        }

        /// <summary>
        /// Appends the subroutines the reports call. Every program ends in a jump, so nothing
        /// falls through into them.
        /// </summary>
        internal void EmitSubroutines()
        {
            if (!_called)
            {
                return;
            }

            // print_hex: eax = value; writes "%08x\n" to the UART; keeps every register but eax.
            // Waiting for THR empty costs one port read per character: under QEMU the first read
            // already shows it empty with a file or socket backend, but a backend that pushes back
            // (a pty nobody reads) holds THR full, and writing then would overwrite a character.
            X86Assembler a = _a;
            Label next = a.NewLabel(), wait = a.NewLabel(), digit = a.NewLabel(), emit = a.NewLabel();
            a.Bind(_printHex);
            a.Push(Reg32.Ebx);
            a.Push(Reg32.Ecx);
            a.Push(Reg32.Edx);
            a.Mov(Reg32.Ebx, Reg32.Eax);            // ebx = value, rotated a nibble per digit
            a.MovImm(Reg32.Ecx, 9);                 // ecx = characters left: 8 digits and '\n'
            a.Bind(next);
            a.MovDx((ushort)(_ports.Status + GuestPorts.LineStatusOffset));
            a.Bind(wait);
            a.InAlDx();                             // al = line status
            a.TestAlImm(GuestPorts.TransmitHoldingEmpty);
            a.Je(wait);                             // until THR is empty
            a.MovImm(Reg32.Eax, '\n');              // the last character
            a.CmpImm(Reg32.Ecx, 1);
            a.Je(emit);
            a.RolImm(Reg32.Ebx, 4);                 // next nibble, most significant first
            a.Mov(Reg32.Eax, Reg32.Ebx);
            a.AndImm(Reg32.Eax, 0xF);
            a.CmpImm(Reg32.Eax, 9);
            a.Jbe(digit);
            a.AddImm(Reg32.Eax, 'a' - '0' - 10);   // 10..15 -> 'a'..'f'
            a.Bind(digit);
            a.AddImm(Reg32.Eax, '0');               // 0..9 -> '0'..'9'
            a.Bind(emit);
            a.MovDx(_ports.Status);
            a.OutDxAl();                            // transmit holding register
            a.Dec(Reg32.Ecx);
            a.Jne(next);
            a.Pop(Reg32.Edx);
            a.Pop(Reg32.Ecx);
            a.Pop(Reg32.Ebx);
            a.Ret();
        }
    }

    private static void CheckRange(ulong start, ulong end, string name)
    {
        if (start % PageSize != 0 || end % PageSize != 0 || end <= start || end > 0xFFFF_F000)
        {
            throw new ArgumentOutOfRangeException(name, $"[0x{start:x}, 0x{end:x}) must be a non-empty, page-aligned range below 4 GiB - 4 KiB.");
        }
    }

    private static GuestProgram Build(string name, X86Assembler a, StatusWriter status, ulong loadAddress, GuestPorts ports, GuestRange[] writes)
    {
        status.EmitSubroutines();
        byte[] code = a.ToArray();
        var program = new GuestProgram(name, code, loadAddress, ports, writes);
        foreach (GuestRange w in writes)
        {
            if (w.Overlaps(program.CodeRange))
            {
                throw new ArgumentException($"The {name} program would overwrite its own code at [0x{loadAddress:x}, 0x{program.CodeRange.End:x}).");
            }
        }

        return program;
    }
}
