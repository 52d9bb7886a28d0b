using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>
/// Decodes protocol frames from a <see cref="PipeReader"/> and hands them to an
/// <see cref="IPageStreamHandler"/>. Every header is checked before its payload is buffered
/// (length against the limit, type, flags, reserved bits), and the first frame must be a
/// Hello, HelloAck or Error whose version is checked before anything else. Page data reaches
/// the handler as slices of the pipe's buffers, without copies or allocations.
/// </summary>
public sealed partial class PageStreamReader
{
    private const int RunEntrySize = 16;

    private readonly PipeReader _input;
    private readonly PageStreamOptions _options;
    private bool _sawFirst;
    private long _arrived;

    /// <summary>Creates a reader over a connection's input.</summary>
    /// <param name="input">Where frames come from.</param>
    /// <param name="options">Limits; <see langword="null"/> for the defaults.</param>
    public PageStreamReader(PipeReader input, PageStreamOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        _input = input;
        _options = options ?? new PageStreamOptions();
        _options.Validate();
    }

    /// <summary>Frames decoded so far.</summary>
    public long FramesRead { get; private set; }

    /// <summary>Bytes of decoded frames so far, headers included.</summary>
    public long BytesRead { get; private set; }

    /// <summary>
    /// Bytes that have arrived so far, whole frames or not: a large frame on a slow link shows
    /// here while it arrives, long before it counts in <see cref="BytesRead"/>. Read from any thread.
    /// </summary>
    internal long BytesArrived => Volatile.Read(ref _arrived);

    /// <summary>
    /// Waits for at least one complete frame and dispatches every complete frame buffered.
    /// </summary>
    /// <returns><see langword="true"/> when frames were dispatched; <see langword="false"/> when the peer closed the stream cleanly between frames.</returns>
    /// <exception cref="MigrationProtocolException">A frame breaks the protocol, or the stream ends inside a frame (<see cref="MigrationProtocolException.StreamCut"/>).</exception>
    public async ValueTask<bool> ReadAsync(IPageStreamHandler handler, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(handler);
        while (true)
        {
            ReadResult read = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            if (read.IsCanceled)
            {
                throw new OperationCanceledException("The read was cancelled.");
            }

            Volatile.Write(ref _arrived, BytesRead + read.Buffer.Length);

            ReadOnlySequence<byte> buffer = read.Buffer;
            int dispatched = 0;
            try
            {
                while (TryTakeFrame(ref buffer, out FrameType type, out ReadOnlySequence<byte> payload))
                {
                    Dispatch(handler, type, payload);
                    dispatched++;
                    FramesRead++;
                    BytesRead += MigrationProtocol.FrameHeaderSize + payload.Length;
                }

                if (dispatched == 0 && read.IsCompleted)
                {
                    if (!buffer.IsEmpty)
                    {
                        throw MigrationProtocolException.Cut(buffer.Length);
                    }

                    return false;
                }
            }
            finally
            {
                _input.AdvanceTo(buffer.Start, buffer.End);
            }

            if (dispatched > 0)
            {
                return true;
            }
        }
    }

    private bool TryTakeFrame(ref ReadOnlySequence<byte> buffer, out FrameType type, out ReadOnlySequence<byte> payload)
    {
        type = default;
        payload = default;
        if (buffer.Length < MigrationProtocol.FrameHeaderSize)
        {
            return false;
        }

        Span<byte> header = stackalloc byte[MigrationProtocol.FrameHeaderSize];
        buffer.Slice(0, MigrationProtocol.FrameHeaderSize).CopyTo(header);
        uint length = BinaryPrimitives.ReadUInt32LittleEndian(header);
        type = (FrameType)header[4];
        if (!Enum.IsDefined(type))
        {
            throw new MigrationProtocolException("header", "type", $"Unknown frame type {header[4]}.");
        }

        if (length > (uint)_options.MaxFramePayload)
        {
            throw new MigrationProtocolException(type.ToString(), "length", $"A {length}-byte payload is over the {_options.MaxFramePayload}-byte limit.");
        }

        if (header[5] != 0)
        {
            throw new MigrationProtocolException(type.ToString(), "flags", $"Flags must be 0 in protocol v{MigrationProtocol.Version} (got 0x{header[5]:x2}).");
        }

        ushort reserved = BinaryPrimitives.ReadUInt16LittleEndian(header[6..]);
        if (reserved != 0)
        {
            throw new MigrationProtocolException(type.ToString(), "reserved", $"The reserved header field must be 0 (got 0x{reserved:x4}).");
        }

        if (!_sawFirst && !CanOpen(type))
        {
            throw new MigrationProtocolException(type.ToString(), "type", "The first frame must be Hello, HelloAck, Resume, Query, Status or Error.");
        }

        if (buffer.Length - MigrationProtocol.FrameHeaderSize < length)
        {
            return false;
        }

        payload = buffer.Slice(MigrationProtocol.FrameHeaderSize, length);
        buffer = buffer.Slice(payload.End);
        _sawFirst = true;
        return true;
    }

    private void Dispatch(IPageStreamHandler handler, FrameType type, ReadOnlySequence<byte> payload)
    {
        switch (type)
        {
            case FrameType.Hello:
                handler.OnHello(ParseHello(payload));
                break;
            case FrameType.HelloAck:
            {
                Span<byte> s = Fixed(payload, "HelloAck", stackalloc byte[16]);
                ushort version = BinaryPrimitives.ReadUInt16LittleEndian(s);
                CheckVersion("HelloAck", version);
                CheckZero("HelloAck", "reserved", s.Slice(2, 6));
                handler.OnHelloAck(new HelloAck(version, Duration("HelloAck", "resumeCostEstimate", BinaryPrimitives.ReadInt64LittleEndian(s[8..]))));
                break;
            }

            case FrameType.Pages:
                DispatchPages(handler, payload);
                break;
            case FrameType.ZeroPages:
                DispatchZeroPages(handler, payload);
                break;
            case FrameType.RoundEnd:
            {
                Span<byte> s = Fixed(payload, "RoundEnd", stackalloc byte[24]);
                int round = Round("RoundEnd", s);
                handler.OnRoundEnd(new RoundEnd(round, BinaryPrimitives.ReadUInt64LittleEndian(s[8..]), BinaryPrimitives.ReadUInt64LittleEndian(s[16..])));
                break;
            }

            case FrameType.RoundAck:
            {
                handler.OnRoundAck(Round("RoundAck", Fixed(payload, "RoundAck", stackalloc byte[8])));
                break;
            }

            case FrameType.DeviceState:
                handler.OnDeviceState(payload);
                break;
            case FrameType.Digests:
                handler.OnDigests(ParseDigests(payload));
                break;
            case FrameType.Complete:
                CheckEmpty(payload, "Complete");
                handler.OnComplete();
                break;
            case FrameType.Ack:
            {
                Span<byte> s = Fixed(payload, "Ack", stackalloc byte[8]);
                handler.OnAck(new CompletionAck(Duration("Ack", "resumeDuration", BinaryPrimitives.ReadInt64LittleEndian(s))));
                break;
            }

            case FrameType.Error:
                handler.OnError(ParseError(payload));
                break;
            default:
                DispatchSessionFrame(handler, type, payload);
                break;
        }
    }

    private static void DispatchPages(IPageStreamHandler handler, ReadOnlySequence<byte> payload)
    {
        (int region, int runs) = RunHeader("Pages", payload);
        long table = 8L + ((long)runs * RunEntrySize);
        if (table > payload.Length)
        {
            throw new MigrationProtocolException("Pages", "runCount", $"{runs} runs do not fit in {payload.Length} bytes.");
        }

        // First pass: check every run and that the data length matches before any handler call.
        Span<byte> entry = stackalloc byte[RunEntrySize];
        long pages = 0;
        for (int i = 0; i < runs; i++)
        {
            payload.Slice(8 + (i * RunEntrySize), RunEntrySize).CopyTo(entry);
            uint count = BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]);
            if (count == 0)
            {
                throw new MigrationProtocolException("Pages", "count", $"Run {i} is empty.");
            }

            CheckZero("Pages", "reserved", entry.Slice(12, 4));
            ulong first = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            if (first + count < first)
            {
                throw new MigrationProtocolException("Pages", "firstPage", $"Run {i} wraps around.");
            }

            pages += count;
            if (pages > payload.Length / MigrationProtocol.PageSize)
            {
                // Also keeps pages × 4096 below overflow, whatever the payload limit.
                throw new MigrationProtocolException("Pages", "length", $"{pages} pages do not fit in a {payload.Length}-byte payload.");
            }
        }

        if (payload.Length != table + (pages * MigrationProtocol.PageSize))
        {
            throw new MigrationProtocolException("Pages", "length", $"{runs} runs of {pages} pages need {table + (pages * MigrationProtocol.PageSize)} bytes, the frame has {payload.Length}.");
        }

        long at = table;
        for (int i = 0; i < runs; i++)
        {
            payload.Slice(8 + (i * RunEntrySize), RunEntrySize).CopyTo(entry);
            ulong first = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            int count = (int)BinaryPrimitives.ReadUInt32LittleEndian(entry[8..]);
            long bytes = (long)count * MigrationProtocol.PageSize;
            handler.OnPages(region, first, count, payload.Slice(at, bytes));
            at += bytes;
        }
    }

    private static void DispatchZeroPages(IPageStreamHandler handler, ReadOnlySequence<byte> payload)
    {
        (int region, int runs) = RunHeader("ZeroPages", payload);
        if (payload.Length != 8L + ((long)runs * RunEntrySize))
        {
            throw new MigrationProtocolException("ZeroPages", "length", $"{runs} runs need {8L + ((long)runs * RunEntrySize)} bytes, the frame has {payload.Length}.");
        }

        Span<byte> entry = stackalloc byte[RunEntrySize];
        for (int i = 0; i < runs; i++)
        {
            payload.Slice(8 + (i * RunEntrySize), RunEntrySize).CopyTo(entry);
            ulong first = BinaryPrimitives.ReadUInt64LittleEndian(entry);
            ulong count = BinaryPrimitives.ReadUInt64LittleEndian(entry[8..]);
            if (count == 0 || first + count < first)
            {
                throw new MigrationProtocolException("ZeroPages", "count", $"Run {i} is empty or wraps around.");
            }

            handler.OnZeroPages(region, first, count);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (int Region, int Runs) RunHeader(string frame, ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 8 + RunEntrySize)
        {
            throw new MigrationProtocolException(frame, "length", $"A {frame} frame is at least {8 + RunEntrySize} bytes (got {payload.Length}).");
        }

        Span<byte> s = stackalloc byte[8];
        payload.Slice(0, 8).CopyTo(s);
        int region = BinaryPrimitives.ReadInt32LittleEndian(s);
        int runs = BinaryPrimitives.ReadInt32LittleEndian(s[4..]);
        if (region < 0)
        {
            throw new MigrationProtocolException(frame, "region", $"Region {region} is negative.");
        }

        if (runs < 1)
        {
            throw new MigrationProtocolException(frame, "runCount", $"A {frame} frame carries at least one run (got {runs}).");
        }

        return (region, runs);
    }

    private static RegionDigest[] ParseDigests(ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 8)
        {
            throw new MigrationProtocolException("Digests", "length", $"A Digests frame is at least 8 bytes (got {payload.Length}).");
        }

        byte[] bytes = payload.ToArray();
        int count = BinaryPrimitives.ReadInt32LittleEndian(bytes);
        if (count is < 1 or > MigrationProtocol.MaxRegions || bytes.Length != 8 + (count * 16))
        {
            throw new MigrationProtocolException("Digests", "count", $"{count} digests do not make {bytes.Length} bytes (1 to {MigrationProtocol.MaxRegions} of 16 bytes each).");
        }

        CheckZero("Digests", "reserved", bytes.AsSpan(4, 4));
        var digests = new RegionDigest[count];
        for (int i = 0; i < count; i++)
        {
            Span<byte> e = bytes.AsSpan(8 + (i * 16), 16);
            int region = BinaryPrimitives.ReadInt32LittleEndian(e);
            if (region < 0)
            {
                throw new MigrationProtocolException("Digests", "region", $"Region {region} is negative.");
            }

            CheckZero("Digests", "reserved", e.Slice(4, 4));
            digests[i] = new RegionDigest(region, BinaryPrimitives.ReadUInt64LittleEndian(e[8..]));
        }

        return digests;
    }

    private static MigrationError ParseError(ReadOnlySequence<byte> payload)
    {
        if (payload.Length < 8)
        {
            throw new MigrationProtocolException("Error", "length", $"An Error frame is at least 8 bytes (got {payload.Length}).");
        }

        byte[] bytes = payload.ToArray();
        ushort code = BinaryPrimitives.ReadUInt16LittleEndian(bytes);
        CheckZero("Error", "reserved", bytes.AsSpan(2, 2));
        // Unknown codes from newer peers are kept as numbers.
        return new MigrationError((MigrationErrorCode)code, Message("Error", bytes));
    }

    private static Span<byte> Fixed(ReadOnlySequence<byte> payload, string frame, Span<byte> into)
    {
        if (payload.Length != into.Length)
        {
            throw new MigrationProtocolException(frame, "length", $"A {frame} frame is {into.Length} bytes (got {payload.Length}).");
        }

        payload.CopyTo(into);
        return into;
    }

    /// <summary>Reads the leading round number (i32 ≥ 0) and its reserved u32 of RoundEnd and RoundAck.</summary>
    private static int Round(string frame, ReadOnlySpan<byte> s)
    {
        int round = BinaryPrimitives.ReadInt32LittleEndian(s);
        if (round < 0)
        {
            throw new MigrationProtocolException(frame, "round", $"Round {round} is negative.");
        }

        CheckZero(frame, "reserved", s.Slice(4, 4));
        return round;
    }

    private static void CheckVersion(string frame, ushort version)
    {
        if (version is < MigrationProtocol.MinimumVersion or > MigrationProtocol.Version)
        {
            throw new MigrationProtocolException(frame, "version", $"Protocol version {version} is not supported (this side speaks {MigrationProtocol.MinimumVersion} to {MigrationProtocol.Version}).");
        }
    }

    private static void CheckZero(string frame, string field, ReadOnlySpan<byte> bytes)
    {
        if (bytes.IndexOfAnyExcept((byte)0) >= 0)
        {
            throw new MigrationProtocolException(frame, field, "Reserved bytes must be 0.");
        }
    }

    private static TimeSpan Duration(string frame, string field, long ticks) => ticks switch
    {
        < 0 => throw new MigrationProtocolException(frame, field, $"A duration cannot be negative ({ticks} ticks)."),
        _ when ticks > MigrationProtocol.MaxDuration.Ticks => throw new MigrationProtocolException(frame, field, $"A duration of {ticks} ticks is over the protocol's bound of {MigrationProtocol.MaxDuration.TotalHours:0} hours."),
        _ => TimeSpan.FromTicks(ticks),
    };
}
