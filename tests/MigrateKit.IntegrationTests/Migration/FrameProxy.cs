using System;
using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// Sits between a source and a receiver and forwards frames both ways, so a test can make the
/// destination vanish at a chosen frame or corrupt one on the way. It understands only the
/// 8-byte frame header (u32 length, u8 type, u8 flags, u16 reserved).
/// </summary>
internal sealed class FrameProxy : IAsyncDisposable
{
    private readonly IMigrationConnection _fromSource;
    private readonly IMigrationConnection _toDestination;
    private readonly Func<FrameType, int, Fault> _decide;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _forward;
    private readonly Task _backward;

    /// <summary>What to do with a frame going to the destination.</summary>
    internal enum Fault
    {
        Forward,
        Disconnect,
        CorruptReserved,
    }

    private FrameProxy(IMigrationConnection fromSource, IMigrationConnection toDestination, Func<FrameType, int, Fault> decide)
    {
        _fromSource = fromSource;
        _toDestination = toDestination;
        _decide = decide;
        _forward = Task.Run(() => ForwardAsync(_stop.Token));
        _backward = Task.Run(() => CopyAsync(_toDestination.Input, _fromSource.Output, _stop.Token));
    }

    /// <summary>How many source-to-destination frames passed.</summary>
    internal int FramesForwarded { get; private set; }

    /// <summary>Whether the fault has been applied.</summary>
    internal bool Faulted { get; private set; }

    /// <summary>
    /// Builds source ⇄ proxy ⇄ destination over in-memory pipes; <paramref name="decide"/> sees each
    /// frame's type and index (0-based) on its way to the destination.
    /// </summary>
    internal static (IMigrationConnection Source, IMigrationConnection Destination, FrameProxy Proxy) Create(Func<FrameType, int, Fault> decide)
    {
        (IMigrationConnection source, IMigrationConnection proxySourceSide) = MigrationConnector.CreateInMemoryPair();
        (IMigrationConnection proxyDestinationSide, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        return (source, destination, new FrameProxy(proxySourceSide, proxyDestinationSide, decide));
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_forward, _backward);
        }
        catch (Exception)
        {
            // The pumps end with the connections; their errors are the test's subject, not ours.
        }

        await _fromSource.DisposeAsync();
        await _toDestination.DisposeAsync();
        _stop.Dispose();
    }

    private async Task ForwardAsync(CancellationToken ct)
    {
        PipeReader input = _fromSource.Input;
        PipeWriter output = _toDestination.Output;
        int index = 0;
        try
        {
            while (true)
            {
                ReadResult read = await input.ReadAsync(ct);
                ReadOnlySequence<byte> buffer = read.Buffer;
                while (TryTakeFrame(ref buffer, out ReadOnlySequence<byte> frame))
                {
                    byte[] bytes = frame.ToArray();
                    var type = (FrameType)bytes[4];
                    Fault fault = Faulted ? Fault.Forward : _decide(type, index);
                    index++;
                    if (fault == Fault.Disconnect)
                    {
                        Faulted = true;
                        input.AdvanceTo(buffer.Start);
                        await output.CompleteAsync();
                        await input.CompleteAsync();
                        await _fromSource.Output.CompleteAsync();
                        await _toDestination.Input.CompleteAsync();
                        return;
                    }

                    if (fault == Fault.CorruptReserved)
                    {
                        Faulted = true;
                        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(6), 0xBAD0);
                    }

                    await output.WriteAsync(bytes, ct);
                    FramesForwarded++;
                }

                input.AdvanceTo(buffer.Start, buffer.End);
                if (read.IsCompleted)
                {
                    await output.CompleteAsync();
                    return;
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private static bool TryTakeFrame(ref ReadOnlySequence<byte> buffer, out ReadOnlySequence<byte> frame)
    {
        frame = default;
        if (buffer.Length < 8)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[8];
        buffer.Slice(0, 8).CopyTo(header);
        long length = 8L + BinaryPrimitives.ReadUInt32LittleEndian(header);
        if (buffer.Length < length)
        {
            return false;
        }

        frame = buffer.Slice(0, length);
        buffer = buffer.Slice(length);
        return true;
    }

    private static async Task CopyAsync(PipeReader from, PipeWriter to, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                ReadResult read = await from.ReadAsync(ct);
                foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                {
                    await to.WriteAsync(segment, ct);
                }

                from.AdvanceTo(read.Buffer.End);
                if (read.IsCompleted)
                {
                    await to.CompleteAsync();
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or InvalidOperationException)
        {
        }
    }
}
