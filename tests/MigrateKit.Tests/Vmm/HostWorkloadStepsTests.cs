using System;
using System.Buffers.Binary;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>HostWorkloadSteps: where each write of a HostVm workload goes, what it writes, and the state after it.</summary>
[TestClass]
public sealed class HostWorkloadStepsTests
{
    private const ulong MiB = 1UL << 20;
    private const int Page = 4096;

    [TestMethod]
    public void Locate_ASweep_WritesEachPageInOrder_AndTheLastEndsThePass()
    {
        HostWorkload w = HostWorkload.Sweep(MiB, MiB + (4 * Page));
        Assert.AreEqual((MiB, false), HostWorkloadSteps.Locate(w, At(1, 0)));
        Assert.AreEqual((MiB + (3 * Page), true), HostWorkloadSteps.Locate(w, At(1, 3)));
    }

    [TestMethod]
    public void Locate_HotCold_AddsTheColdRangeOnlyOnColdPasses()
    {
        HostWorkload w = HostWorkload.HotCold(new GuestRange(MiB, MiB + (2 * Page)), new GuestRange(2 * MiB, (2 * MiB) + (3 * Page)), 3);
        Assert.AreEqual((MiB + Page, false), HostWorkloadSteps.Locate(w, At(1, 1)), "pass 1 is a cold pass");
        Assert.AreEqual((2 * MiB, false), HostWorkloadSteps.Locate(w, At(1, 2)));
        Assert.AreEqual(((2 * MiB) + (2 * Page), true), HostWorkloadSteps.Locate(w, At(1, 4)));
        Assert.AreEqual((MiB + Page, true), HostWorkloadSteps.Locate(w, At(2, 1)), "pass 2 writes the hot range only");
        Assert.IsFalse(HostWorkloadSteps.Locate(w, At(4, 1)).LastInPass, "pass 4 = 1 + 3 is a cold pass again");
        Assert.AreEqual(5UL, HostWorkloadSteps.MaxPassLength(w));
    }

    [TestMethod]
    public void Locate_RandomWrites_TakesThePageFromTheGenerator()
    {
        HostWorkload w = HostWorkload.RandomWrites(MiB, MiB + (8 * Page), 12345);
        HostWorkerState s = At(1, 0);
        s.Rng = 13;
        Assert.AreEqual((MiB + (5 * Page), false), HostWorkloadSteps.Locate(w, s));
    }

    [TestMethod]
    public void PageIndex_CountsPagesFromTheStartOfTheRange()
    {
        HostWorkload w = HostWorkload.Verifier(MiB, 2 * MiB);
        Assert.AreEqual(0u, HostWorkloadSteps.PageIndex(w, MiB));
        Assert.AreEqual(3u, HostWorkloadSteps.PageIndex(w, MiB + (3 * Page)));
    }

    [TestMethod]
    public void Write_ASweep_StoresTheLowByteOfThePass()
    {
        byte[] page = new byte[Page];
        Assert.AreEqual(-1, HostWorkloadSteps.Write(HostWorkload.Sweep(MiB, 2 * MiB), page, 0, 0x1_02));
        Assert.AreEqual((byte)0x02, page[0]);
    }

    [TestMethod]
    public void Write_AVerifier_ChecksThePreviousPassAndStoresThisOne()
    {
        HostWorkload w = HostWorkload.Verifier(MiB, 2 * MiB);
        byte[] page = new byte[Page];
        Assert.AreEqual(-1, HostWorkloadSteps.Write(w, page, 7, 1), "pass 1 has nothing to check");
        Assert.AreEqual(GuestPrograms.VerifierValue(7, 1), BinaryPrimitives.ReadUInt32LittleEndian(page));
        Assert.AreEqual(-1, HostWorkloadSteps.Write(w, page, 7, 2));
        page[0] ^= 1;
        Assert.AreEqual(7, HostWorkloadSteps.Write(w, page, 7, 3), "a lost write is a failure at its page");
        Assert.AreEqual(GuestPrograms.VerifierValue(7, 3), BinaryPrimitives.ReadUInt32LittleEndian(page));
    }

    [TestMethod]
    public void Write_AFill_WritesEveryDwordOfThePage()
    {
        byte[] page = new byte[Page];
        HostWorkloadSteps.Write(HostWorkload.Fill(MiB, 2 * MiB), page, 2, 1);
        uint expected = unchecked((2 * 0x9E37_79B1u) | 1);
        Assert.IsTrue(Enumerable.Range(0, Page / 4).All(i => BinaryPrimitives.ReadUInt32LittleEndian(page.AsSpan(i * 4)) == expected));
    }

    [TestMethod]
    public void Advance_AtTheEndOfAPass_StartsTheNextAndAFillHalts()
    {
        HostWorkerState s = At(1, 3);
        Assert.IsTrue(HostWorkloadSteps.Advance(HostWorkload.Fill(MiB, 2 * MiB), ref s, -1, lastInPass: true));
        Assert.AreEqual(2u, s.Pass);
        Assert.AreEqual(0UL, s.Position);
        Assert.IsTrue(s.Halted);
        Assert.AreEqual(1, s.PagesWritten);
    }

    [TestMethod]
    public void Advance_WithinAPass_MovesTheCursorAndStepsTheGenerator()
    {
        HostWorkload w = HostWorkload.RandomWrites(MiB, 2 * MiB, 1);
        HostWorkerState s = HostWorkerState.Initial(w);
        Assert.IsFalse(HostWorkloadSteps.Advance(w, ref s, -1, lastInPass: false));
        Assert.AreEqual(1UL, s.Position);
        Assert.AreEqual(270_369u, s.Rng, "xorshift32(1)");
    }

    [TestMethod]
    public void Advance_KeepsTheFirstFailedPage()
    {
        HostWorkload w = HostWorkload.Verifier(MiB, 2 * MiB);
        HostWorkerState s = At(2, 0);
        s.FirstFailedPage = -1;
        HostWorkloadSteps.Advance(w, ref s, 9, lastInPass: false);
        HostWorkloadSteps.Advance(w, ref s, 4, lastInPass: false);
        Assert.AreEqual(2, s.Failures);
        Assert.AreEqual(9, s.FirstFailedPage);
    }

    [TestMethod]
    public void Locate_Phased_WritesTheEarlySetForTheFirstPasses_ThenTheWholeRange()
    {
        HostWorkload w = HostWorkload.Phased(MiB, MiB + (8 * Page), MiB + (2 * Page), growAfter: 3);
        Assert.AreEqual((MiB + Page, true), HostWorkloadSteps.Locate(w, At(1, 1)), "pass 1 ends after the early set");
        Assert.AreEqual((MiB + Page, true), HostWorkloadSteps.Locate(w, At(3, 1)), "so does pass 3");
        Assert.AreEqual((MiB + Page, false), HostWorkloadSteps.Locate(w, At(4, 1)), "pass 4 writes the whole range");
        Assert.AreEqual((MiB + (7 * Page), true), HostWorkloadSteps.Locate(w, At(4, 7)));
        Assert.AreEqual(8UL, HostWorkloadSteps.MaxPassLength(w));
    }

    [TestMethod]
    public void Locate_Bursty_WritesEveryPage_ThenTicksQuietlyToTheEndOfThePass()
    {
        HostWorkload w = HostWorkload.Bursty(MiB, MiB + (4 * Page), quietTicks: 6);
        Assert.AreEqual((MiB + (3 * Page), false), HostWorkloadSteps.Locate(w, At(1, 3)));
        Assert.IsTrue(HostWorkloadSteps.Writes(w, At(1, 3)), "the burst writes");
        Assert.IsFalse(HostWorkloadSteps.Writes(w, At(1, 4)), "the quiet ticks do not");
        Assert.IsFalse(HostWorkloadSteps.Locate(w, At(1, 8)).LastInPass);
        Assert.IsTrue(HostWorkloadSteps.Locate(w, At(1, 9)).LastInPass, "4 writes and 6 quiet ticks");
        Assert.AreEqual(10UL, HostWorkloadSteps.MaxPassLength(w));
        Assert.IsTrue(HostWorkloadSteps.Writes(HostWorkload.Sweep(MiB, 2 * MiB), At(1, 0)));
    }

    [TestMethod]
    public void Advance_Bursty_CountsOnlyTheBurstsWrites_AndAPassIsTheBurstAndTheQuiet()
    {
        HostWorkload w = HostWorkload.Bursty(MiB, MiB + (2 * Page), quietTicks: 3);
        HostWorkerState s = HostWorkerState.Initial(w);
        int passesEnded = 0;
        for (int step = 0; step < 10; step++)
        {
            (_, bool last) = HostWorkloadSteps.Locate(w, s);
            passesEnded += HostWorkloadSteps.Advance(w, ref s, -1, last) ? 1 : 0;
        }

        Assert.AreEqual(2, passesEnded);
        Assert.AreEqual(3u, s.Pass);
        Assert.AreEqual(4, s.PagesWritten, "two writes per pass; the quiet ticks write nothing");
    }

    [TestMethod]
    public void Write_PhasedAndBursty_StoreTheLowByteOfThePass()
    {
        byte[] page = new byte[Page];
        Assert.AreEqual(-1, HostWorkloadSteps.Write(HostWorkload.Phased(MiB, 2 * MiB, MiB + Page, 1), page, 0, 0x1_07));
        Assert.AreEqual((byte)0x07, page[0]);
        Assert.AreEqual(-1, HostWorkloadSteps.Write(HostWorkload.Bursty(MiB, 2 * MiB, 1), page, 0, 0x09));
        Assert.AreEqual((byte)0x09, page[0]);
    }

    private static HostWorkerState At(uint pass, ulong position) => new() { Pass = pass, Position = position };
}
