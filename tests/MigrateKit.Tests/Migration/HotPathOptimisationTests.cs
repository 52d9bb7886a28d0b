using System;
using System.Linq;
using System.Reflection;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Estimation;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The per-page and per-word loops compile fully optimised on first use. A process that migrates
/// once keeps compiling new code, which holds the runtime's tier-up back for the whole migration:
/// without the flag these loops ran unoptimised from round 0 to the switchover
/// (docs/BENCHMARKS.md, "A process's first migration runs optimised code").
/// </summary>
[TestClass]
public sealed class HotPathOptimisationTests
{
    private const BindingFlags Any = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static readonly object[][] HotMethods =
    [
        [typeof(PageDelta), "Encode"], [typeof(PageDelta), "Walk"], [typeof(PageDelta), "Changed"], [typeof(PageDelta), "ReadLength"], [typeof(PageDelta), "WriteLength"],
        [typeof(PageEncoder), "Encode"], [typeof(PageEncoder), "Choose"], [typeof(PageEncoder), "Decode"], [typeof(PageEncoder), "DeltaCost"],
        [typeof(SentPageCache), "TryGet"], [typeof(SentPageCache), "TryPeek"], [typeof(SentPageCache), "Put"], [typeof(SentPageCache), "Find"], [typeof(SentPageCache), "TakeSlot"],
        [typeof(EncodedPageBatch), "Add"], [typeof(EncodedPageBatch), "AppendTo"], [typeof(PageStreamWriter), "AppendEncodedPages"], [typeof(PageStreamWriter), "AppendPages"],
        [typeof(PageStreamReader), "EntryLength"], [typeof(RegionDigestAccumulator), "Update"], [typeof(RegionDigestAccumulator), "Set"], [typeof(PageHash), "Hash"],
        [typeof(DirtyBitmap), "CountWords"], [typeof(DirtyBitmap), "CountChunks"], [typeof(DirtyBitmap), "ApplyRange"], [typeof(DirtyBitmap), "Combine"],
        [typeof(DirtyBitmap.PageRunEnumerator), "MoveNext"], [typeof(DirtyBitmap.PageRunEnumerator), "FindNext"], [typeof(DirtyBitmap.SetPageEnumerator), "MoveNext"],
        [typeof(RoundSender), "AppendFrames"], [typeof(RoundSender), "AppendEncoded"], [typeof(RoundSender), "AppendDataRuns"], [typeof(RoundSender), "AppendZeroRuns"],
        [typeof(ReceiverSession), "WritePages"], [typeof(ReceiverSession), "WriteEncodedPage"], [typeof(ReceiverSession), "WriteZeroPages"],
        [typeof(RegionSet), "Harvest"], [typeof(EngineRegion), "CountAnd"], [typeof(EngineRegion), "CountAndNot"],
        [typeof(PageHeat), "Update"], [typeof(PageHeat), "UpdateWord"], [typeof(PageHeat), "UpdatePages"],
        [typeof(WriteProtectTracker), "Scan"], [typeof(KvmDirtyLogTracker), "Harvest"], [typeof(KvmDirtyRingTracker), "Harvest"],

        // Their callees that do not inline (seen in the JIT's listings) would run unoptimised per page, frame or harvest.
        [typeof(GuestMemoryRegion), "GetPage"], [typeof(ReceiverSession), "CheckRange"], [typeof(ReceiverSession), "Contiguous"], [typeof(EncodedPageBatch), "IsFullFor"],
        [typeof(PageDelta), "LengthBytes"], [typeof(SentPageCache), "Copy"], [typeof(SentPageCache), "Unlink"], [typeof(SentPageCache), "LinkNewest"],
        [typeof(SentPageCache), "MakeNewest"], [typeof(SentPageCache), "Home"], [typeof(SentPageCache), "Remove"], [typeof(SentPageCache), "RemoveAt"],
        [typeof(SentPageCache), "get_NextSlotNeverWritten"], [typeof(RegionDigestAccumulator), "Term"],
        [typeof(RegionDigestAccumulator), "SplitMix64"], [typeof(PopulateAhead), "Advance"], [typeof(PageStreamWriter), "AppendZeroPages"], [typeof(PageStreamWriter), "Account"],
        [typeof(PageStreamReader), "RunHeader"], [typeof(RegionSet), "MarkAllPending"], [typeof(EngineRegion), "WarmHarvested"], [typeof(HarvestTargets), "Check"],
        [typeof(GuestMemoryRegion), "get_PageCount"], [typeof(ReceiverSession), "CheckLive"], [typeof(SentPageCache), "SlabBytes"], [typeof(PageHash), "Scramble"],
        [typeof(DirtyBitmap), "SetAll"],
    ];

    // Small callees the JIT's listings showed called, not inlined, once per page or per run of
    // bytes from optimised loops (docs/BENCHMARKS.md, "The small per-page callees inline").
    public static readonly object[][] InlinedCallees =
    [
        [typeof(PageDelta), "LengthBytes"], [typeof(PageDelta), "WriteLength"], [typeof(EncodedPageBatch), "IsFullFor"], [typeof(PageStreamWriter), "Account"],
        [typeof(RegionDigestAccumulator), "SplitMix64"], [typeof(SentPageCache), "Unlink"], [typeof(SentPageCache), "get_NextSlotNeverWritten"], [typeof(PopulateAhead), "Advance"],
    ];

    [TestMethod]
    [DynamicData(nameof(HotMethods))]
    public void AHotLoop_CompilesFullyOptimisedOnFirstUse(Type type, string name)
    {
        // Of overloads, the one with the loop: the others forward to it.
        MethodInfo? method = type.GetMethods(Any).Where(m => m.Name == name).MaxBy(m => m.GetParameters().Length);
        Assert.IsNotNull(method, $"{type.Name}.{name} not found");
        Assert.IsTrue(method.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveOptimization), $"{type.Name}.{method}");
    }

    [TestMethod]
    public void PreparePages_CompilesThePerPageTypesAhead()
    {
        JitWarmup.PreparePages();
        foreach (Type type in new[] { typeof(DirtyBitmap), typeof(GuestMemoryRegion), typeof(PageEncoder), typeof(PageDelta), typeof(SentPageCache), typeof(EncodedPageBatch), typeof(RegionDigestAccumulator), typeof(PageHash) })
        {
            Assert.IsTrue(JitWarmup.IsPrepared(type), type.Name);
        }
    }

    [TestMethod]
    [DynamicData(nameof(InlinedCallees))]
    public void ASmallHotCallee_AsksToBeInlined(Type type, string name)
    {
        MethodInfo? method = type.GetMethods(Any).SingleOrDefault(m => m.Name == name);
        Assert.IsNotNull(method, $"{type.Name}.{name} not found");
        Assert.IsTrue(method.MethodImplementationFlags.HasFlag(MethodImplAttributes.AggressiveInlining), $"{type.Name}.{method}");
    }
}
