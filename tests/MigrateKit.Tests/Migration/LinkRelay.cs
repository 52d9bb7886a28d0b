using System;
using System.Buffers;
using System.IO;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>Where a <see cref="LinkRelay"/> breaks its link by itself.</summary>
/// <param name="TowardsSource">The direction that stops at <paramref name="At"/>.</param>
/// <param name="At">The byte of that direction where the link breaks.</param>
/// <param name="Closes">
/// Both ends read an end of stream where their direction stopped, inside a frame or not, as when a
/// proxy closes the link; otherwise the source sees a reset and the destination silence.
/// </param>
internal sealed record LinkCut(bool TowardsSource, long At, bool Closes);

/// <summary>
/// Between the engine and a socket to a receiver: an in-memory pair pumped both ways, counting the
/// bytes. The test drops the link when it chooses, or arms a <see cref="LinkCut"/> at a byte.
/// </summary>
internal sealed class LinkRelay : IAsyncDisposable
{
    private readonly IMigrationConnection _socket;
    private readonly IMigrationConnection _near;
    private readonly LinkCut? _cut;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pumps;
    private int _broken;
    private int _closed;

    public LinkRelay(IMigrationConnection socket, LinkCut? cut = null)
    {
        _socket = socket;
        _cut = cut;
        (Source, _near) = MigrationConnector.CreateInMemoryPair();
        _pumps = Task.WhenAll(PumpAsync(_near.Input, socket.Output, 0), PumpAsync(socket.Input, _near.Output, 1));
    }

    /// <summary>The engine's end of the link.</summary>
    public IMigrationConnection Source { get; }

    /// <summary>Bytes forwarded towards the destination [0] and towards the source [1].</summary>
    public long[] Bytes { get; } = new long[2];

    /// <summary>Drops the link as a lost link does: both of the source's directions fail, and the destination's socket closes.</summary>
    public async Task DropAsync()
    {
        await BreakAsync();
        await CloseSocketAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await BreakAsync();
        await CloseSocketAsync();
        await Source.DisposeAsync();
        _stop.Dispose();
    }

    private async Task BreakAsync()
    {
        if (Interlocked.Exchange(ref _broken, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync();
        await _pumps;
        var lost = new IOException("the test cut the link");
        await _near.Input.CompleteAsync(lost);
        if (_cut is { Closes: true })
        {
            await _near.Output.CompleteAsync();
            await _socket.Output.CompleteAsync();
        }
        else
        {
            await _near.Output.CompleteAsync(lost);
        }
    }

    private async Task CloseSocketAsync()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 0)
        {
            await _socket.DisposeAsync();
        }
    }

    private async Task PumpAsync(PipeReader from, PipeWriter to, int direction)
    {
        long limit = _cut is { } c && c.TowardsSource == (direction == 1) ? c.At : long.MaxValue;
        try
        {
            while (true)
            {
                ReadResult read = await from.ReadAsync(_stop.Token);
                ReadOnlySequence<byte> buffer = read.Buffer;
                long left = limit - Bytes[direction];
                bool cutHere = buffer.Length >= left;
                ReadOnlySequence<byte> passed = cutHere ? buffer.Slice(0, left) : buffer;
                foreach (ReadOnlyMemory<byte> segment in passed)
                {
                    await to.WriteAsync(segment, _stop.Token);
                }

                Bytes[direction] += passed.Length;
                from.AdvanceTo(passed.End, buffer.End);
                if (cutHere)
                {
                    // Not awaited here: breaking waits for this pump to end.
                    _ = Task.Run(BreakAsync);
                    return;
                }

                if (read.IsCompleted)
                {
                    await to.CompleteAsync();
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or IOException or InvalidOperationException)
        {
            // Broken by the test, or one side went away: the relay ends with it.
        }
    }
}
