using System;
using System.Buffers;
using System.Collections.Generic;
using System.IO;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// The destination's side of the Ack: sending it however the link behaves, and learning whether
/// it arrived. A version 3 source says so with Done; a version 2 source closes its side, so there a
/// clean end of the stream confirms it. Anything else leaves it unconfirmed, and the source will
/// ask (Query). A proxy that closes the link while the Ack is on its way ends the stream cleanly
/// too, which is why version 3 does not take the end of the stream for the answer.
/// </summary>
internal static class AckDelivery
{
    /// <summary>The longest wait for the source's hang-up after the Ack.</summary>
    private static readonly TimeSpan ConfirmationWait = TimeSpan.FromSeconds(10);

    /// <summary>Flushes the Ack within the idle timeout; a link that fails here changes nothing (the VM runs either way).</summary>
    internal static async Task TryFlushAsync(PageStreamWriter writer, MigrationReceiverOptions options)
    {
        try
        {
            using var timeout = new CancellationTokenSource(options.IdleTimeout, options.TimeProvider);
            await writer.FlushAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or TimeoutException)
        {
            // The source will learn it by a Query: the VM runs here either way.
        }
    }

    /// <summary>
    /// Whether the source confirmed the Ack (within 10 s, or the idle timeout when shorter): with
    /// Done under <paramref name="version"/> 3, by closing its side cleanly under version 2. False at
    /// once when the receive is stopped (<paramref name="stopping"/>).
    /// </summary>
    internal static async Task<bool> SourceConfirmsAsync(PageStreamReader reader, ushort version, MigrationReceiverOptions options, CancellationToken stopping)
    {
        TimeSpan wait = options.IdleTimeout < ConfirmationWait ? options.IdleTimeout : ConfirmationWait;
        using var timeout = new CancellationTokenSource(wait, options.TimeProvider);
        using var either = CancellationTokenSource.CreateLinkedTokenSource(timeout.Token, stopping);
        var done = new AcceptDone();
        try
        {
            if (version < 3)
            {
                return !await reader.ReadAsync(new RefuseEverything(), either.Token).ConfigureAwait(false);
            }

            while (!done.Arrived && await reader.ReadAsync(done, either.Token).ConfigureAwait(false))
            {
            }

            return done.Arrived;
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or MigrationProtocolException or InvalidOperationException)
        {
            // Whatever broke after a Done, the source had the Ack.
            return done.Arrived;
        }
    }

    /// <summary>After the Ack, a version 3 source sends Done and nothing else.</summary>
    private sealed class AcceptDone : RefusingHandler
    {
        internal bool Arrived { get; private set; }

        public override void OnDone()
        {
            if (Arrived)
            {
                throw new MigrationProtocolException("Done", "type", "A second Done arrived.");
            }

            Arrived = true;
        }

        protected override string Refused(string frame) => $"{frame} arrived after the Ack; only Done may follow it.";
    }
}

/// <summary>
/// A handler that refuses every frame as a protocol violation, with the reason
/// <see cref="Refused"/> gives; a subclass accepts the frames it expects by overriding them.
/// </summary>
internal abstract class RefusingHandler : IPageStreamHandler
{
    public virtual void OnHello(MigrationHello hello) => throw Violation("Hello");

    public virtual void OnHelloAck(HelloAck ack) => throw Violation("HelloAck");

    public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data) => throw Violation("Pages");

    public void OnZeroPages(int region, ulong firstPage, ulong count) => throw Violation("ZeroPages");

    public void OnRoundEnd(RoundEnd roundEnd) => throw Violation("RoundEnd");

    public void OnDeviceState(ReadOnlySequence<byte> state) => throw Violation("DeviceState");

    public void OnDigests(IReadOnlyList<RegionDigest> digests) => throw Violation("Digests");

    public void OnComplete() => throw Violation("Complete");

    public void OnAck(CompletionAck ack) => throw Violation("Ack");

    public virtual void OnError(MigrationError error) => throw Violation("Error");

    public virtual void OnDone() => throw Violation("Done");

    /// <summary>Why <paramref name="frame"/> is refused here.</summary>
    protected abstract string Refused(string frame);

    private MigrationProtocolException Violation(string frame) => new(frame, "type", Refused(frame));
}

/// <summary>A handler for a stream that must carry nothing more: any frame is a violation.</summary>
internal sealed class RefuseEverything : RefusingHandler
{
    protected override string Refused(string frame) => $"{frame} arrived after the migration ended.";
}
