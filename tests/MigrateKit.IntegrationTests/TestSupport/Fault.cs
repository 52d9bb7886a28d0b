using System;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>Which way bytes travel through a <see cref="FaultProxy"/>.</summary>
internal enum Direction
{
    /// <summary>From the peer that connected to the proxy (the source) to the target (the destination).</summary>
    ToDestination,

    /// <summary>From the destination back to the source.</summary>
    ToSource,
}

/// <summary>The kinds of <see cref="Fault"/>.</summary>
internal enum FaultKind
{
    Reset,
    BlackHole,
    Delay,
    Cut,
    HalfOpen,
}

/// <summary>What a <see cref="FaultProxy"/> does to a connection when a fault fires.</summary>
/// <param name="Kind">The fault.</param>
/// <param name="Direction">The direction a cut or a half-open closes.</param>
/// <param name="Bytes">For a cut: how many more bytes pass in <paramref name="Direction"/> before both sides close.</param>
/// <param name="Latency">For a delay: added before every chunk forwarded.</param>
internal sealed record Fault(FaultKind Kind, Direction Direction = Direction.ToDestination, long Bytes = 0, TimeSpan Latency = default)
{
    /// <summary>Resets both sockets (linger 0, then close): each peer reads ECONNRESET.</summary>
    internal static Fault Reset { get; } = new(FaultKind.Reset);

    /// <summary>Forwards nothing more either way and stops reading, with both sockets left open: the link goes silent.</summary>
    internal static Fault BlackHole { get; } = new(FaultKind.BlackHole);

    /// <summary>Adds <paramref name="latency"/> before every chunk forwarded, both ways.</summary>
    internal static Fault Delay(TimeSpan latency) => new(FaultKind.Delay, Latency: latency);

    /// <summary>Lets <paramref name="bytes"/> more bytes pass in <paramref name="direction"/>, then closes both sides (FIN).</summary>
    internal static Fault CutAfter(long bytes, Direction direction = Direction.ToDestination) => new(FaultKind.Cut, direction, bytes);

    /// <summary>Closes one direction: its receiver reads end of stream, its sender is no longer read; the other direction keeps flowing.</summary>
    internal static Fault HalfOpen(Direction closed) => new(FaultKind.HalfOpen, closed);
}
