using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>
/// GuestPrograms: argument checks, the shape of the programs, and their behaviour, run on a small
/// interpreter of exactly the instructions X86Assembler emits (no KVM needed).
/// </summary>
[TestClass]
public sealed class GuestProgramsTests
{
    private const uint Page = 4096;
    private const ulong MiB = 1UL << 20;
    private const ushort PacePort = 0xE0;
    private const ushort StatusPort = 0xE4;

    public static IEnumerable<object[]> BadRanges =>
    [
        [0x10_0001UL, 0x20_0000UL],   // unaligned start
        [0x10_0000UL, 0x20_0800UL],   // unaligned end
        [0x10_0000UL, 0x10_0000UL],   // empty
        [0x20_0000UL, 0x10_0000UL],   // reversed
        [0x10_0000UL, 0x1_0000_0000UL], // ends above 4 GiB - 4 KiB
        [0xFFFF_F000UL, 0x1_0000_0000UL],
        [0x1_0000_0000UL, 0x1_0000_1000UL], // wholly above 4 GiB
    ];

    [TestMethod]
    [DynamicData(nameof(BadRanges))]
    public void EveryProgram_RejectsABadRange(ulong start, ulong end)
    {
        AssertRangeRejected(() => GuestPrograms.Sweep(start, end), "start");
        AssertRangeRejected(() => GuestPrograms.RandomWrites(start, end, seed: 1), "start");
        AssertRangeRejected(() => GuestPrograms.Verifier(start, end), "start");
        AssertRangeRejected(() => GuestPrograms.Fill(start, end), "start");
        AssertRangeRejected(() => GuestPrograms.HotCold(new GuestRange(start, end), new GuestRange(0x800_0000, 0x900_0000), 2), "hot");
        AssertRangeRejected(() => GuestPrograms.HotCold(new GuestRange(0x800_0000, 0x900_0000), new GuestRange(start, end), 2), "cold");
    }

    [TestMethod]
    public void HighestAllowedRange_IsAccepted()
    {
        GuestProgram p = GuestPrograms.Sweep(0xFFFF_0000, 0xFFFF_F000);
        Assert.AreEqual(new GuestRange(0xFFFF_0000, 0xFFFF_F000), p.Writes.Single());
    }

    [TestMethod]
    public void Sweep_RejectsAZeroOrOversizedStride()
    {
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Sweep(MiB, 2 * MiB, stride: 0));
        Assert.AreEqual("stride", ex.ParamName);

        // edi would wrap past 4 GiB before reaching end.
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Sweep(0xFFFF_0000, 0xFFFF_F000, stride: 0x2000));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Sweep(MiB, 2 * MiB, stride: uint.MaxValue));
    }

    [TestMethod]
    public void HotCold_RejectsOverlapAndZeroColdEvery()
    {
        ArgumentException overlap = Assert.ThrowsExactly<ArgumentException>(() =>
            GuestPrograms.HotCold(new GuestRange(MiB, 3 * MiB), new GuestRange(2 * MiB, 4 * MiB), 2));
        Assert.AreEqual("cold", overlap.ParamName);
        Assert.Contains("overlap", overlap.Message);

        ArgumentOutOfRangeException zero = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() =>
            GuestPrograms.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 3 * MiB), 0));
        Assert.AreEqual("coldEvery", zero.ParamName);
    }

    [TestMethod]
    public void RandomWrites_RejectsASeedOfZero()
    {
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.RandomWrites(MiB, 2 * MiB, seed: 0));
        Assert.AreEqual("seed", ex.ParamName);
    }

    [TestMethod]
    public void AWorkingSetOverTheCode_IsRejected()
    {
        // The default load address is page 1; a range from 0 covers it.
        Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.Sweep(0, 0x10000));
        Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.Verifier(0x1000, 0x2000));
        Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.Fill(0, MiB, loadAddress: 0x8_0000));
        Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(0, 0x2000), 1));

        // Elsewhere the same range is fine.
        GuestProgram p = GuestPrograms.Sweep(0, 0x10000, loadAddress: 0x10000);
        Assert.AreEqual(0x10000UL, p.LoadAddress);
        Assert.IsFalse(p.CodeRange.Overlaps(p.Writes[0]));
    }

    [TestMethod]
    public void Programs_DescribeThemselves()
    {
        var ports = new GuestPorts(0x70, 0x72);
        GuestProgram[] programs =
        [
            GuestPrograms.Sweep(MiB, 2 * MiB, ports: ports),
            GuestPrograms.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(4 * MiB, 8 * MiB), 3, ports),
            GuestPrograms.RandomWrites(MiB, 2 * MiB, 7, ports),
            GuestPrograms.Verifier(MiB, 2 * MiB, ports),
            GuestPrograms.Fill(MiB, 2 * MiB, ports),
            GuestPrograms.Idle(ports),
        ];

        Assert.AreSequenceEqual(new[] { "sweep", "hotcold", "random", "verify", "fill", "idle" }, programs.Select(p => p.Name).ToArray());
        foreach (GuestProgram p in programs)
        {
            Assert.IsNotEmpty(p.Code, p.Name);
            Assert.AreEqual(GuestPrograms.DefaultLoadAddress, p.LoadAddress, p.Name);
            Assert.AreEqual(new GuestRange(p.LoadAddress, p.LoadAddress + (ulong)p.Code.Length), p.CodeRange, p.Name);
            Assert.AreEqual(ports, p.Ports, p.Name);
            Assert.IsTrue(p.Writes.All(w => !w.Overlaps(p.CodeRange)), p.Name);
        }

        Assert.AreSequenceEqual(new[] { new GuestRange(MiB, 2 * MiB), new GuestRange(4 * MiB, 8 * MiB) }, programs[1].Writes.ToArray());
        Assert.IsEmpty(programs[5].Writes);
    }

    [TestMethod]
    public void Idle_IsHltAndAJumpBack()
    {
        Assert.AreSequenceEqual(new byte[] { 0xF4, 0xE9, 0xFA, 0xFF, 0xFF, 0xFF }, GuestPrograms.Idle().Code);
        var cpu = new GuestCpu(GuestPrograms.Idle(), MiB);
        cpu.RunUntilHalt();
        Assert.IsEmpty(cpu.Outs);
    }

    [TestMethod]
    public void GuestPortsDefault_And_GuestRange()
    {
        Assert.AreEqual(new GuestPorts(0xE0, 0xE4), GuestPorts.Default);
        Assert.AreEqual(0x8000_0000u, GuestPorts.FailureFlag);
        var r = new GuestRange(0x1000, 0x3000);
        Assert.AreEqual(0x2000UL, r.Length);
        Assert.IsTrue(r.Overlaps(new GuestRange(0x2FFF, 0x4000)));
        Assert.IsTrue(r.Overlaps(new GuestRange(0, 0x1001)));
        Assert.IsTrue(r.Overlaps(new GuestRange(0x1800, 0x1900)));
        Assert.IsFalse(r.Overlaps(new GuestRange(0x3000, 0x4000)));
        Assert.IsFalse(r.Overlaps(new GuestRange(0, 0x1000)));
    }

    [TestMethod]
    public void VerifierValue_IsTheDocumentedFormula()
    {
        Assert.AreEqual(0u, GuestPrograms.VerifierValue(123, 0), "memory starts zeroed: the value before pass 1");
        Assert.AreEqual(1u, GuestPrograms.VerifierValue(0, 1));
        Assert.AreEqual(0x9E37_79B1u, GuestPrograms.VerifierValue(1, 1));
        Assert.AreEqual(unchecked(0x9E37_79B1u * 3), GuestPrograms.VerifierValue(1, 3));
        Assert.AreEqual(unchecked(5 * ((7u * 0x9E37_79B1u) | 1)), GuestPrograms.VerifierValue(7, 5));
    }

    [TestMethod]
    public void VerifierValue_IsNonZero_AndDiffersPerPage_AndPerPass()
    {
        const uint Pages = 1 << 16;
        uint[] passes = [1, 2, 3, 4, 255, 256, 1000, 65_537];
        foreach (uint pass in passes)
        {
            var seen = new HashSet<uint>();
            for (uint page = 0; page < Pages; page++)
            {
                uint value = GuestPrograms.VerifierValue(page, pass);
                Assert.AreNotEqual(0u, value, $"page {page} pass {pass}");
                Assert.IsTrue(seen.Add(value), $"page {page} repeats a value of pass {pass}");
            }
        }

        // Each pass changes every page's value (the multiplier is odd, so never by a multiple of 2^32).
        for (uint page = 0; page < 4096; page += 7)
        {
            for (uint pass = 1; pass < 50; pass++)
            {
                Assert.AreNotEqual(GuestPrograms.VerifierValue(page, pass - 1), GuestPrograms.VerifierValue(page, pass), $"page {page} pass {pass}");
            }
        }
    }

    [TestMethod]
    public void Sweep_WritesOneBytePerStride_AndReportsEveryPass()
    {
        const uint Start = 0x1_0000, End = 0x2_0000;
        var cpu = new GuestCpu(GuestPrograms.Sweep(Start, End), MiB);
        cpu.RunUntilStatus(2);

        Assert.AreSequenceEqual(new uint[] { 1, 2 }, cpu.StatusValues.ToArray());
        Assert.AreEqual(2 * 16, cpu.Outs.Count(o => o.Port == PacePort && o.Size == 1), "one pace write per page per pass");
        for (uint a = Start; a < End; a++)
        {
            Assert.AreEqual(a % Page == 0 ? (byte)2 : (byte)0, cpu.Memory[a], $"0x{a:x}");
        }

        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void Sweep_WithAnOddStride_StaysInsideTheRange_AndWithoutPacePort_IsSilent()
    {
        const uint Start = 0x4_0000, End = 0x4_3000, Stride = 1000;
        var cpu = new GuestCpu(GuestPrograms.Sweep(Start, End, Stride, new GuestPorts(null, StatusPort)), MiB);
        cpu.RunUntilStatus(1);

        var expected = new HashSet<uint>();
        for (uint a = Start; a < End; a += Stride)
        {
            expected.Add(a);
        }

        for (uint a = Start; a < End; a++)
        {
            Assert.AreEqual(expected.Contains(a) ? (byte)1 : (byte)0, cpu.Memory[a], $"0x{a:x}");
        }

        Assert.IsTrue(cpu.Outs.All(o => o.Port == StatusPort), "no pace writes");
        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void HotCold_RewritesColdPagesOnPassOneAndThenEveryNth()
    {
        var hot = new GuestRange(0x2_0000, 0x2_4000);
        var cold = new GuestRange(0x8_0000, 0x8_8000);
        var cpu = new GuestCpu(GuestPrograms.HotCold(hot, cold, coldEvery: 3), MiB);

        // Cold sweeps happen on passes 1, 4, 7, ...
        byte[] lastColdPass = [0, 1, 1, 1, 4, 4, 4, 7];
        for (uint pass = 1; pass <= 7; pass++)
        {
            cpu.RunUntilStatus(pass);
            for (ulong a = hot.Start; a < hot.End; a += Page)
            {
                Assert.AreEqual((byte)pass, cpu.Memory[a], $"hot 0x{a:x} after pass {pass}");
            }

            for (ulong a = cold.Start; a < cold.End; a += Page)
            {
                Assert.AreEqual(lastColdPass[pass], cpu.Memory[a], $"cold 0x{a:x} after pass {pass}");
            }
        }

        Assert.AreEqual((7 * 4) + (3 * 8), cpu.Outs.Count(o => o.Port == PacePort));
    }

    [TestMethod]
    public void RandomWrites_FollowTheDocumentedXorshift()
    {
        const uint Start = 0x10_0000, End = 0x14_0000, Seed = 12345;
        const uint Pages = (End - Start) / Page;
        var cpu = new GuestCpu(GuestPrograms.RandomWrites(Start, End, Seed), 2 * MiB);
        cpu.RunUntilStatus(2);

        // Reference model: xorshift32 (13, 17, 5), page = high half of x * pages.
        uint x = Seed;
        var lastPass = new Dictionary<uint, byte>();
        for (byte pass = 1; pass <= 2; pass++)
        {
            for (uint i = 0; i < Pages; i++)
            {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                lastPass[(uint)(((ulong)x * Pages) >> 32)] = pass;
            }
        }

        for (uint page = 0; page < Pages; page++)
        {
            byte expected = lastPass.TryGetValue(page, out byte p) ? p : (byte)0;
            Assert.AreEqual(expected, cpu.Memory[Start + (page * Page)], $"page {page}");
            Assert.AreEqual(-1, cpu.Memory.AsSpan((int)(Start + (page * Page)) + 1, (int)Page - 1).IndexOfAnyExcept((byte)0), $"page {page}");
        }

        Assert.AreEqual(2 * (int)Pages, cpu.Outs.Count(o => o.Port == PacePort));
        Assert.IsGreaterThan(Pages / 2, (uint)lastPass.Count, "the generator spreads its writes");
        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void Verifier_StoresTheDocumentedValues_AtThreeOffsets()
    {
        const uint Start = 0x10_0000, End = 0x12_0000;
        var cpu = new GuestCpu(GuestPrograms.Verifier(Start, End), 2 * MiB);
        cpu.RunUntilStatus(3);

        Assert.AreSequenceEqual(new uint[] { 1, 2, 3 }, cpu.StatusValues.ToArray(), "no failures");
        for (uint page = 0; page < (End - Start) / Page; page++)
        {
            uint at = Start + (page * Page);
            uint expected = GuestPrograms.VerifierValue(page, 3);
            Assert.AreEqual(expected, cpu.ReadDword(at), $"page {page} offset 0");
            Assert.AreEqual(expected, cpu.ReadDword(at + 2048), $"page {page} offset 2048");
            Assert.AreEqual(expected, cpu.ReadDword(at + 4092), $"page {page} offset 4092");
            Assert.AreEqual(0u, cpu.ReadDword(at + 4), $"page {page} offset 4");
        }

        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void Verifier_ReportsACorruptedPage_AndRepairsIt()
    {
        const uint Start = 0x10_0000, End = 0x11_0000;
        var cpu = new GuestCpu(GuestPrograms.Verifier(Start, End), 2 * MiB);
        cpu.RunUntilStatus(2);

        cpu.Memory[Start + (5 * Page) + 2048] ^= 0xFF;
        cpu.RunUntilStatus(3);

        Assert.AreSequenceEqual(new uint[] { 1, 2, GuestPorts.FailureFlag | 5, 3 }, cpu.StatusValues.ToArray());
        Assert.AreEqual(GuestPrograms.VerifierValue(5, 3), cpu.ReadDword(Start + (5 * Page) + 2048));

        cpu.RunUntilStatus(4);
        Assert.AreEqual(4u, cpu.StatusValues[^1], "the repaired page passes the next check");
    }

    [TestMethod]
    public void Fill_WritesOneNonZeroDwordPerPage_ReportsPassOne_AndHalts()
    {
        const uint Start = 0x10_0000, End = 0x10_8000;
        var cpu = new GuestCpu(GuestPrograms.Fill(Start, End), 2 * MiB);
        cpu.RunUntilHalt();

        Assert.AreSequenceEqual(new uint[] { 1 }, cpu.StatusValues.ToArray());
        for (uint page = 0; page < (End - Start) / Page; page++)
        {
            Assert.AreEqual(GuestPrograms.VerifierValue(page, 1), cpu.ReadDword(Start + (page * Page)), $"page {page} offset 0");
            for (uint offset = 4; offset < Page; offset += 4)
            {
                Assert.AreEqual(0u, cpu.ReadDword(Start + (page * Page) + offset), $"page {page} offset {offset}");
            }
        }

        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void Fill_UsesNoStringInstruction()
    {
        string[] code = Objdump.Disassemble(GuestPrograms.Fill(MiB, 2 * MiB).Code, "i386");
        Assert.IsFalse(code.Any(i => i.StartsWith("rep", StringComparison.Ordinal) || i.Contains("stos", StringComparison.Ordinal) || i.Contains("movs", StringComparison.Ordinal)), string.Join("; ", code));
    }

    [TestMethod]
    public void Com1_IsStatusAt3F8_AsText_WithoutPacePort()
    {
        Assert.AreEqual(new GuestPorts(null, 0x3F8, SerialText: true), GuestPorts.Com1);
        Assert.IsFalse(GuestPorts.Default.SerialText, "dword reports unless asked");
    }

    [TestMethod]
    public void SerialText_Sweep_PrintsEachPassAsEightHexDigitsAndANewline()
    {
        const uint Start = 0x1_0000, End = 0x2_0000;
        var cpu = new GuestCpu(GuestPrograms.Sweep(Start, End, ports: GuestPorts.Com1), MiB);
        cpu.RunUntilLine(3);

        Assert.AreEqual("00000001\n00000002\n00000003\n", cpu.SerialText);
        Assert.IsTrue(cpu.Outs.All(o => o.Port == 0x3F8 && o.Size == 1), "only byte writes to the UART's data register");
        for (uint a = Start; a < End; a++)
        {
            Assert.AreEqual(a % Page == 0 ? (byte)3 : (byte)0, cpu.Memory[a], $"0x{a:x}");
        }

        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void SerialText_Verifier_ReportsAFailureInLowercaseHex_AndKeepsItsRegisters()
    {
        const uint Start = 0x10_0000, End = 0x12_0000;
        var cpu = new GuestCpu(GuestPrograms.Verifier(Start, End, GuestPorts.Com1), 2 * MiB);
        cpu.RunUntilLine(2);

        cpu.Memory[Start + (0x1A * Page) + 4092] ^= 0x01;
        cpu.RunUntilLine(4);

        Assert.AreEqual("00000001\n00000002\n8000001a\n00000003\n", cpu.SerialText);
        for (uint page = 0; page < (End - Start) / Page; page++)
        {
            // The failure report in the middle of a pass must not disturb the pass's registers.
            uint expected = GuestPrograms.VerifierValue(page, 3);
            Assert.AreEqual(expected, cpu.ReadDword(Start + (page * Page)), $"page {page} offset 0");
            Assert.AreEqual(expected, cpu.ReadDword(Start + (page * Page) + 4092), $"page {page} offset 4092");
        }

        cpu.AssertUntouchedOutside(Start, End);
    }

    [TestMethod]
    public void SerialText_WaitsForAnEmptyTransmitter_BeforeEveryCharacter()
    {
        // The line status register reports THR full on two reads out of three.
        var cpu = new GuestCpu(GuestPrograms.HotCold(new GuestRange(MiB, MiB + (4 * Page)), new GuestRange(2 * MiB, 2 * MiB + Page), 2, GuestPorts.Com1), 4 * MiB)
        {
            LineStatus = read => read % 3 == 2 ? (byte)0x60 : (byte)0x00,
        };
        cpu.RunUntilLine(0xB);

        Assert.AreEqual(string.Concat(Enumerable.Range(1, 0xB).Select(i => $"{i:x8}\n")), cpu.SerialText);
        Assert.AreEqual(3 * cpu.SerialText.Length, cpu.LineStatusReads, "three reads per character, the last one empty");
    }

    [TestMethod]
    public void SerialText_EveryProgramReportsTheSameValues_AsWithDwordReports()
    {
        var com1 = GuestPorts.Com1;
        (GuestProgram Text, GuestProgram Dword)[] pairs =
        [
            (GuestPrograms.Sweep(MiB, MiB + (8 * Page), ports: com1), GuestPrograms.Sweep(MiB, MiB + (8 * Page))),
            (GuestPrograms.HotCold(new GuestRange(MiB, MiB + Page), new GuestRange(2 * MiB, 2 * MiB + Page), 3, com1),
             GuestPrograms.HotCold(new GuestRange(MiB, MiB + Page), new GuestRange(2 * MiB, 2 * MiB + Page), 3)),
            (GuestPrograms.RandomWrites(MiB, MiB + (16 * Page), 99, com1), GuestPrograms.RandomWrites(MiB, MiB + (16 * Page), 99)),
            (GuestPrograms.Verifier(MiB, MiB + (8 * Page), com1), GuestPrograms.Verifier(MiB, MiB + (8 * Page))),
        ];

        foreach ((GuestProgram text, GuestProgram dword) in pairs)
        {
            var t = new GuestCpu(text, 4 * MiB);
            var d = new GuestCpu(dword, 4 * MiB);
            t.RunUntilLine(5);
            d.RunUntilStatus(5);
            Assert.AreSequenceEqual(d.StatusValues.ToArray(), t.SerialValues.ToArray(), text.Name);
            Assert.IsTrue(t.Memory.AsSpan((int)MiB).SequenceEqual(d.Memory.AsSpan((int)MiB)), $"{text.Name}: the same memory");
        }

        var fill = new GuestCpu(GuestPrograms.Fill(MiB, MiB + (4 * Page), com1), 4 * MiB);
        fill.RunUntilHalt();
        Assert.AreEqual("00000001\n", fill.SerialText);
    }

    [TestMethod]
    public void SerialText_Idle_HasNoSubroutine()
    {
        Assert.AreSequenceEqual(GuestPrograms.Idle().Code, GuestPrograms.Idle(GuestPorts.Com1).Code);
    }

    [TestMethod]
    public void SerialText_NeedsRoomForTheLineStatusRegister()
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.Sweep(MiB, 2 * MiB, ports: new GuestPorts(null, 0xFFFB, SerialText: true)));
        Assert.AreEqual("ports", ex.ParamName);
        Assert.Contains("line status register", ex.Message);

        // 0xFFFA + 5 is the last port.
        Assert.IsNotEmpty(GuestPrograms.Sweep(MiB, 2 * MiB, ports: new GuestPorts(null, 0xFFFA, SerialText: true)).Code);
    }

    [TestMethod]
    public void SerialText_CallsOneSubroutine_FromEveryReport()
    {
        // Verifier reports passes and failures: two calls, one subroutine (one ret).
        string[] code = Objdump.Disassemble(GuestPrograms.Verifier(MiB, 2 * MiB, GuestPorts.Com1).Code, "i386", GuestPrograms.DefaultLoadAddress);
        string[] calls = code.Where(i => i.StartsWith("call ", StringComparison.Ordinal)).ToArray();
        Assert.HasCount(2, calls, "two call sites");
        Assert.HasCount(1, calls.Distinct().ToArray(), "to one address");
        Assert.AreEqual(1, code.Count(i => i == "ret"));
        Assert.IsFalse(code.Contains("out dx,eax"), "no dword out to the UART");
    }

    private static void AssertRangeRejected(Func<GuestProgram> build, string paramName)
    {
        ArgumentOutOfRangeException ex = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => build());
        Assert.AreEqual(paramName, ex.ParamName);
    }
}
