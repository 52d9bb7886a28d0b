using System;
using System.Buffers;
using System.Collections.Generic;

namespace MigrateKit.Transport;

/// <summary>
/// The memory of the connections' pipes: blocks of one size, kept when a pipe returns them and
/// handed out again, so the blocks the pre-copy rounds used serve the switchover, which then
/// neither allocates nor first touches memory inside the downtime.
/// </summary>
/// <remarks>
/// One pool serves every connection of the process, so the blocks of one migration serve the
/// next; it keeps at most <see cref="SharedKeep"/> of them (a migration's two directions on both
/// ends, at the default pause threshold, use about 22). Requests above <see cref="BlockSize"/> (a
/// device state larger than a block) go to the shared array pool, as the pipe does for any
/// pool's largest size.
/// </remarks>
internal sealed class SegmentPool : MemoryPool<byte>
{
    /// <summary>The size of every block: a batch of encoded pages, a socket read or many pages of a raw frame.</summary>
    internal const int BlockSize = 1 << 20;

    private readonly Stack<Block> _free = new();
    private readonly int _keep;

    /// <summary>Creates a pool that keeps up to <paramref name="keep"/> returned blocks.</summary>
    internal SegmentPool(int keep) => _keep = keep;

    /// <summary>The most blocks <see cref="Connections"/> keeps.</summary>
    internal const int SharedKeep = 32;

    /// <summary>The pool every connection's pipes take their memory from.</summary>
    internal static SegmentPool Connections { get; } = new(SharedKeep);

    /// <inheritdoc/>
    public override int MaxBufferSize => BlockSize;

    /// <summary>Blocks returned and kept for the next requests.</summary>
    internal int FreeBlocks
    {
        get
        {
            lock (_free)
            {
                return _free.Count;
            }
        }
    }

    /// <inheritdoc/>
    /// <exception cref="ArgumentOutOfRangeException">More than <see cref="BlockSize"/> bytes were asked for.</exception>
    public override IMemoryOwner<byte> Rent(int minBufferSize = -1)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(minBufferSize, BlockSize);
        Block? block;
        lock (_free)
        {
            _free.TryPop(out block);
        }

        // Pinned: sockets read into and send from these without pinning them per call.
        block ??= new Block(this, GC.AllocateUninitializedArray<byte>(BlockSize, pinned: true));
        block.Rented = true;
        return block;
    }

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        lock (_free)
        {
            _free.Clear();
        }
    }

    private void Return(Block block)
    {
        lock (_free)
        {
            // A block given back twice is kept once; beyond the bound it is left to the collector.
            if (block.Rented)
            {
                block.Rented = false;
                if (_free.Count < _keep)
                {
                    _free.Push(block);
                }
            }
        }
    }

    private sealed class Block(SegmentPool pool, byte[] array) : IMemoryOwner<byte>
    {
        internal bool Rented { get; set; }

        public Memory<byte> Memory => array;

        public void Dispose() => pool.Return(this);
    }
}
