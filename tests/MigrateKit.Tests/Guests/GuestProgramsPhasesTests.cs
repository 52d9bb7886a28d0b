using System;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;

namespace MigrateKit.Tests.Guests;

/// <summary>The phased and bursty guest programs, run on the test interpreter: which pages each pass writes, and the pace ticks.</summary>
[TestClass]
public sealed class GuestProgramsPhasesTests
{
    private const uint Page = 4096;
    private const ulong MiB = 1UL << 20;
    private const ushort PacePort = 0xE0;

    [TestMethod]
    public void Phased_WritesTheEarlySetForTheFirstPasses_ThenTheWholeSet()
    {
        const uint Start = 0x2_0000, EarlyEnd = 0x2_2000, End = 0x2_8000;
        GuestProgram program = GuestPrograms.Phased(Start, End, EarlyEnd, growAfter: 3);
        var cpu = new GuestCpu(program, MiB);
        for (uint pass = 1; pass <= 5; pass++)
        {
            cpu.RunUntilStatus(pass);
            for (uint a = Start; a < End; a += Page)
            {
                byte expected = a < EarlyEnd ? (byte)pass : pass > 3 ? (byte)pass : (byte)0;
                Assert.AreEqual(expected, cpu.Memory[a], $"0x{a:x} after pass {pass}");
            }
        }

        Assert.AreSequenceEqual(new uint[] { 1, 2, 3, 4, 5 }, cpu.StatusValues.ToArray());
        Assert.AreEqual((3 * 2) + (2 * 8), cpu.Outs.Count(o => o.Port == PacePort), "one pace write per page written");
        cpu.AssertUntouchedOutside(Start, End);
        Assert.AreEqual("phased", program.Name);
        Assert.AreEqual(new GuestRange(Start, End), program.Writes.Single());
    }

    [TestMethod]
    public void Phased_RejectsAnEarlySetOutsideTheRange_OrNoEarlyPasses()
    {
        Assert.AreEqual("earlyEnd", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Phased(MiB, 2 * MiB, 3 * MiB, 2)).ParamName);
        Assert.AreEqual("earlyEnd", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Phased(MiB, 2 * MiB, MiB, 2)).ParamName);
        Assert.AreEqual("start", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Phased(MiB + 1, 2 * MiB, MiB + Page, 2)).ParamName);
        Assert.AreEqual("growAfter", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Phased(MiB, 2 * MiB, MiB + Page, 0)).ParamName);
    }

    [TestMethod]
    public void Bursty_WritesEveryPageInABurst_ThenTicksThePacePortWithoutWriting()
    {
        const uint Start = 0x3_0000, End = 0x3_4000;
        GuestProgram program = GuestPrograms.Bursty(Start, End, quietTicks: 12);
        var cpu = new GuestCpu(program, MiB);
        cpu.RunUntilStatus(1);
        byte[] afterOne = [.. cpu.Memory];
        cpu.RunUntilStatus(2);

        for (uint a = Start; a < End; a++)
        {
            Assert.AreEqual(a % Page == 0 ? (byte)1 : (byte)0, afterOne[a], $"0x{a:x} after pass 1");
            Assert.AreEqual(a % Page == 0 ? (byte)2 : (byte)0, cpu.Memory[a], $"0x{a:x} after pass 2");
        }

        // Each pass: 4 pages written and 12 quiet ticks, then the report.
        Assert.AreEqual(2 * (4 + 12), cpu.Outs.Count(o => o.Port == PacePort));
        Assert.AreEqual(4 + 12, cpu.Outs.TakeWhile(o => o.Port == PacePort).Count());
        cpu.AssertUntouchedOutside(Start, End);
        Assert.AreEqual("bursty", program.Name);
    }

    [TestMethod]
    public void Bursty_RejectsNoQuietTicks_AndABadRange()
    {
        Assert.AreEqual("quietTicks", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Bursty(MiB, 2 * MiB, 0)).ParamName);
        Assert.AreEqual("start", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => GuestPrograms.Bursty(2 * MiB, MiB, 1)).ParamName);
    }
}
