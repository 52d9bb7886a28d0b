using System;
using System.Buffers;
using System.IO.Pipelines;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class SegmentPoolTests
{
    [TestMethod]
    public void AReturnedBlock_IsHandedOutAgain()
    {
        using var pool = new SegmentPool(keep: 2);
        IMemoryOwner<byte> first = pool.Rent(100);
        Assert.AreEqual(SegmentPool.BlockSize, first.Memory.Length, "every request gets a whole block");
        Memory<byte> memory = first.Memory;
        first.Dispose();
        Assert.AreEqual(1, pool.FreeBlocks);

        IMemoryOwner<byte> again = pool.Rent(SegmentPool.BlockSize);
        Assert.IsTrue(again.Memory.Span == memory.Span, "the same block came back");
        Assert.AreEqual(0, pool.FreeBlocks);
    }

    [TestMethod]
    public void ThePoolKeepsNoMoreThanItsBound_AndABlockGivenBackTwiceOnce()
    {
        using var pool = new SegmentPool(keep: 2);
        IMemoryOwner<byte>[] owners = [pool.Rent(), pool.Rent(), pool.Rent()];
        foreach (IMemoryOwner<byte> owner in owners)
        {
            owner.Dispose();
        }

        Assert.AreEqual(2, pool.FreeBlocks);
        owners[0].Dispose();
        Assert.AreEqual(2, pool.FreeBlocks);

        IMemoryOwner<byte> a = pool.Rent();
        a.Dispose();
        a.Dispose();
        Assert.AreEqual(2, pool.FreeBlocks);
        Assert.IsFalse(pool.Rent().Memory.Span == pool.Rent().Memory.Span, "two renters never share a block");
    }

    [TestMethod]
    public void MoreThanABlock_IsRefused()
    {
        using var pool = new SegmentPool(keep: 1);
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => pool.Rent(SegmentPool.BlockSize + 1));
    }

    [TestMethod]
    public void APipesBlocks_ServeItsNextBurstWithoutAllocating()
    {
        // A switchover's one build: several batches appended before a single flush. Once the
        // pre-copy rounds have used the pipe, its blocks are at hand for it.
        Assert.AreSame(SegmentPool.Connections, MigrationConnector.PipeOptionsFor(new PageStreamOptions()).Pool, "every connection's pipes share the pool");
        using var pool = new SegmentPool(keep: 4);
        var pipe = new Pipe(new PipeOptions(pool: pool, pauseWriterThreshold: 8 << 20, resumeWriterThreshold: 4 << 20, minimumSegmentSize: SegmentPool.BlockSize, useSynchronizationContext: false));
        Burst(pipe);
        long before = GC.GetAllocatedBytesForCurrentThread();
        Burst(pipe);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.AreEqual(0L, allocated, "the second burst's segments came from the pool");

        // Larger than a block: the pipe asks the shared array pool, and the stream still works.
        Span<byte> large = pipe.Writer.GetSpan(SegmentPool.BlockSize + 1);
        Assert.IsGreaterThan(SegmentPool.BlockSize, large.Length);
        large[SegmentPool.BlockSize] = 7;
        pipe.Writer.Advance(SegmentPool.BlockSize + 1);
        Assert.IsTrue(pipe.Writer.FlushAsync().IsCompletedSuccessfully);
        Assert.IsTrue(pipe.Reader.TryRead(out ReadResult read));
        Assert.AreEqual(SegmentPool.BlockSize + 1L, read.Buffer.Length);
        Assert.AreEqual(7, read.Buffer.Slice(SegmentPool.BlockSize).FirstSpan[0]);
        pipe.Reader.AdvanceTo(read.Buffer.End);
    }

    private static void Burst(Pipe pipe)
    {
        for (int batch = 0; batch < 5; batch++)
        {
            Span<byte> span = pipe.Writer.GetSpan((128 << 10) + 8);
            span[..((128 << 10) + 8)].Fill((byte)batch);
            pipe.Writer.Advance((128 << 10) + 8);
        }

        ValueTask<FlushResult> flush = pipe.Writer.FlushAsync();
        Assert.IsTrue(flush.IsCompletedSuccessfully);
        Assert.IsTrue(pipe.Reader.TryRead(out ReadResult read));
        Assert.AreEqual(5L * ((128 << 10) + 8), read.Buffer.Length);
        pipe.Reader.AdvanceTo(read.Buffer.End);
    }
}
