using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>A frame a <see cref="FaultProxy"/> forwarded whole.</summary>
/// <param name="Connection">Which connection (0-based, in accept order).</param>
/// <param name="Type">The header's type byte.</param>
/// <param name="Length">The payload length.</param>
/// <param name="Offset">Where its header starts in its connection's stream of that direction.</param>
/// <param name="Head">The first bytes of its payload (up to <see cref="FaultProxy.HeadBytes"/>).</param>
internal sealed record ProxyFrame(int Connection, FrameType Type, uint Length, long Offset, byte[] Head);
