using System;
using System.Collections.Generic;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>Where in a frame a trigger fires.</summary>
internal enum FramePoint
{
    /// <summary>Before the frame's first header byte is forwarded.</summary>
    Before,

    /// <summary>After a number of the frame's payload bytes (the header included before them) were forwarded.</summary>
    Inside,

    /// <summary>After the frame's last byte was forwarded.</summary>
    After,
}

/// <summary>One step of a <see cref="Trigger"/>: the <paramref name="Occurrence"/>-th frame of <paramref name="Type"/> in <paramref name="Direction"/>.</summary>
internal sealed record FrameMatch(FrameType Type, int Occurrence, Direction Direction, FramePoint Point, long PayloadBytes);

/// <summary>
/// When an armed <see cref="Fault"/> fires: at once, or at a frame. Frame steps count from the
/// moment they become active (arming, or the previous step of <see cref="Then"/>) across every
/// connection of the proxy; the frame type is the header's byte, so types this code does not
/// name work as <c>(FrameType)12</c>.
/// </summary>
internal sealed record Trigger(IReadOnlyList<FrameMatch> Steps)
{
    /// <summary>Fires at once on the current connection, or on the next one before any byte passes.</summary>
    internal static Trigger Now { get; } = new(Array.Empty<FrameMatch>());

    /// <summary>Fires after the <paramref name="occurrence"/>-th (1-based) frame of <paramref name="type"/> went through whole.</summary>
    internal static Trigger AfterFrame(FrameType type, int occurrence = 1, Direction direction = Direction.ToDestination) =>
        Frame(type, occurrence, direction, FramePoint.After, 0);

    /// <summary>Fires before the <paramref name="occurrence"/>-th (1-based) frame of <paramref name="type"/>: none of it passes.</summary>
    internal static Trigger BeforeFrame(FrameType type, int occurrence = 1, Direction direction = Direction.ToDestination) =>
        Frame(type, occurrence, direction, FramePoint.Before, 0);

    /// <summary>
    /// Fires inside the <paramref name="occurrence"/>-th (1-based) frame of <paramref name="type"/>, once its header and
    /// <paramref name="payloadBytes"/> bytes of its payload passed (at its end when the payload is shorter).
    /// </summary>
    internal static Trigger InsideFrame(FrameType type, long payloadBytes, int occurrence = 1, Direction direction = Direction.ToDestination) =>
        Frame(type, occurrence, direction, FramePoint.Inside, payloadBytes);

    /// <summary>Fires after the source's RoundEnd of <paramref name="round"/> (0-based) went through.</summary>
    internal static Trigger AfterRoundEnd(int round) => AfterFrame(FrameType.RoundEnd, round + 1);

    /// <summary>Fires after the destination's RoundAck of <paramref name="round"/> (0-based) went through.</summary>
    internal static Trigger AfterRoundAck(int round) => AfterFrame(FrameType.RoundAck, round + 1, Direction.ToSource);

    /// <summary>This trigger, then <paramref name="next"/> counted from the moment this one is reached.</summary>
    internal Trigger Then(Trigger next) => new([.. Steps, .. next.Steps]);

    private static Trigger Frame(FrameType type, int occurrence, Direction direction, FramePoint point, long payloadBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(occurrence, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(payloadBytes);
        return new Trigger([new FrameMatch(type, occurrence, direction, point, payloadBytes)]);
    }
}
