using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>The random-bytes guest program, run on the test interpreter: every dword of its set rewritten from the documented xorshift, page after page.</summary>
[TestClass]
public sealed class GuestProgramsRandomBytesTests
{
    private const uint Page = 4096;
    private const ulong MiB = 1UL << 20;
    private const ushort PacePort = 0xE0;

    [TestMethod]
    public void RandomBytes_RewritesEveryDwordOfEveryPage_FromTheDocumentedXorshift_EveryPass()
    {
        const uint Start = 0x10_0000, End = 0x10_4000, Seed = 0x1234_5678;
        GuestProgram program = GuestPrograms.RandomBytes(Start, End, Seed);
        var cpu = new GuestCpu(program, 2 * MiB);

        // Reference model: xorshift32 (13, 17, 5), one value per dword, in address order, continuing across passes.
        uint x = Seed;
        for (uint pass = 1; pass <= 3; pass++)
        {
            cpu.RunUntilStatus(pass);
            for (uint a = Start; a < End; a += 4)
            {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                Assert.AreEqual(x, cpu.ReadDword(a), $"0x{a:x} after pass {pass}");
            }
        }

        Assert.AreSequenceEqual(new uint[] { 1, 2, 3 }, cpu.StatusValues.ToArray());
        Assert.AreEqual(3 * 4, cpu.Outs.Count(o => o.Port == PacePort), "one pace write per page written");
        cpu.AssertUntouchedOutside(Start, End);
        Assert.AreEqual("randombytes", program.Name);
        Assert.AreEqual(new GuestRange(Start, End), program.Writes.Single());
    }

    [TestMethod]
    public void RandomBytes_ARewrittenPageSharesAlmostNothingWithItsPreviousCopy()
    {
        const uint Start = 0x10_0000, End = 0x10_2000;
        var cpu = new GuestCpu(GuestPrograms.RandomBytes(Start, End, seed: 7), 2 * MiB);
        cpu.RunUntilStatus(1);
        byte[] first = cpu.Memory.AsSpan((int)Start, (int)(End - Start)).ToArray();
        cpu.RunUntilStatus(2);
        byte[] second = cpu.Memory.AsSpan((int)Start, (int)(End - Start)).ToArray();

        // A delta encoder (xbzrle) gains only on bytes that did not change: about 1 in 256 here.
        int same = first.Zip(second).Count(b => b.First == b.Second);
        Assert.IsLessThan(first.Length / 64, same, $"{same} of {first.Length} bytes unchanged");
        Assert.IsLessThan(first.Length / 64, first.Count(b => b == 0), "the pages are not mostly zero");
    }

    [TestMethod]
    public void RandomBytes_UnderCom1_ReportsPassesAsText_WithoutStringInstructions()
    {
        GuestProgram program = GuestPrograms.RandomBytes(MiB, MiB + (2 * Page), 99, GuestPorts.Com1, BootSector.ProgramAddress);
        var cpu = new GuestCpu(program, 4 * MiB);
        cpu.RunUntilLine(3);
        Assert.AreEqual("00000001\n00000002\n00000003\n", cpu.SerialText);

        string[] code = Objdump.Disassemble(program.Code, "i386", BootSector.ProgramAddress);
        Assert.IsFalse(code.Any(i => i.StartsWith("rep", StringComparison.Ordinal) || i.Contains("stos", StringComparison.Ordinal) || i.Contains("movs", StringComparison.Ordinal)),
            string.Join(" | ", code));
        Assert.IsNotEmpty(BootSector.Build(program));
    }

    [TestMethod]
    public void RandomBytes_RejectsASeedOfZero_AndABadRange()
    {
        Assert.AreEqual("seed", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.RandomBytes(MiB, 2 * MiB, 0)).ParamName);
        Assert.AreEqual("start", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.RandomBytes(MiB + 1, 2 * MiB, 1)).ParamName);
        Assert.AreEqual("start", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.RandomBytes(2 * MiB, MiB, 1)).ParamName);
    }

    [TestMethod]
    public void RandomBytesContent_IsWhatTheGuestWritesInItsFirstPass()
    {
        const uint Start = 0x10_0000, End = 0x10_3000, Seed = 0xBEEF;
        var cpu = new GuestCpu(GuestPrograms.RandomBytes(Start, End, Seed), 2 * MiB);
        cpu.RunUntilStatus(1);
        byte[] content = new byte[End - Start];

        GuestPrograms.RandomBytesContent(content, Seed);

        Assert.AreSequenceEqual(cpu.Memory.AsSpan((int)Start, content.Length).ToArray(), content);
    }

    [TestMethod]
    public void RandomBytesContent_RejectsAPartialDword_AndASeedOfZero()
    {
        Assert.AreEqual("destination", Assert.ThrowsExactly<ArgumentException>(() => GuestPrograms.RandomBytesContent(new byte[6], 1)).ParamName);
        Assert.AreEqual("seed", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.RandomBytesContent(new byte[8], 0)).ParamName);
    }
}
