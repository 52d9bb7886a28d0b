using System;
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Pipelines;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using MigrateKit.Vmm;
using static MigrateKit.IntegrationTests.TestSupport.TestVms;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// A peer that stops reading, over real TCP on 127.0.0.1: each side gives up within its timeout
/// instead of waiting for the kernel to give up on the connection.
/// </summary>
[TestClass]
public sealed class StalledPeerTests
{
    private const ulong Base = 1 * MiB;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(2);

    [TestMethod]
    [TestCategory("WriteProtect")]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task DestinationThatStopsReadingAfterTheHandshake_FailsTheMigrationWithinTheResponseTimeout_SourceRunningEveryPagePending()
    {
        WriteTrackingRequirement.Require();
        using var source = new HostVm(128 * MiB);
        source.Load(HostWorkload.Verifier(Base, Base + (64 * MiB)));
        source.Start();
        Assert.IsTrue(source.WaitForPass(1, PassTimeout), $"no first pass: {source.GetStatus()}");

        // A small receive buffer: what the source can put in flight is its pipe and its send buffer, about 12 MiB of the 64.
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 64 * 1024 };
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        Task<Socket> accepting = listener.AcceptAsync();
        await using IMigrationConnection connection = await MigrationConnector.ConnectAsync($"tcp:127.0.0.1:{((IPEndPoint)listener.LocalEndPoint!).Port}");
        using Socket destination = await accepting.WaitAsync(PassTimeout);
        Task<long> acknowledged = Task.Run(() => AnswerHelloThenStopReadingAsync(destination));

        using WriteProtectTracker tracker = source.CreateTracker();
        // Raw pages fill the socket buffers within round 0, so the stall shows.
        var engine = new PreCopyEngine(source, tracker, new MigrationOptions { ResponseTimeout = Timeout, AllowThrottling = false, Encodings = PageEncodings.None });
        Task<MigrationReport> migrating = engine.MigrateAsync(connection);
        long stoppedReading = await acknowledged.WaitAsync(PassTimeout);
        MigrationReport report = await migrating.WaitAsync(PassTimeout);
        TimeSpan took = Stopwatch.GetElapsedTime(stoppedReading);

        Assert.AreEqual(MigrationStatus.Failed, report.Status, report.Reason);
        Assert.AreEqual(MigrationPhase.Send, report.FailedPhase);
        Assert.Contains("the destination took no data for 2 s during round 0", report.Reason!);
        Assert.IsLessThan(Timeout * 3, took, "the engine gave up in time");
        Assert.IsTrue(source.IsRunning, "the source runs on");
        Assert.AreEqual(0, source.ThrottlePercent);

        // The destination acknowledged nothing: every page stays pending, and the memory is intact.
        Assert.AreEqual(source.Memory.Regions[0].PageCount, engine.PendingPages[0].Count());
        VcpuStatus before = source.GetStatus();
        Assert.IsTrue(source.WaitForPass(before.Passes + 2, PassTimeout), $"stuck at {source.GetStatus()}");
        Assert.AreEqual(0L, source.GetStatus().Failures);
    }

    [TestMethod]
    [Timeout(120_000, CooperativeCancellation = true)]
    public async Task SourceThatStopsReadingTheReplies_DoesNotHoldTheReceiverBeyondItsIdleTimeout()
    {
        // Small buffers on the destination, so its RoundAcks back up quickly once nobody reads them.
        var small = new PageStreamOptions { MaxFramePayload = 8192, MaxPagesPerFrame = 1, PauseWriterThreshold = 64 * 1024, ResumeWriterThreshold = 32 * 1024 };
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", small);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        using var source = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        await source.ConnectAsync(IPEndPoint.Parse(listener.LocalAddress["tcp:".Length..]));
        await using IMigrationConnection connection = await accepting.WaitAsync(PassTimeout);
        var receiver = new MigrationReceiver(hello => new HostVm(hello.Regions), new MigrationReceiverOptions { IdleTimeout = Timeout });
        long started = Stopwatch.GetTimestamp();
        Task<ReceiveResult> receiving = receiver.ReceiveAsync(connection);

        // The Hello, then RoundEnds, each answered by a RoundAck that this source never reads.
        using var stop = new CancellationTokenSource();
        Task flooding = Task.Run(() => SendRoundEndsAsync(source, stop.Token));
        ReceiveResult result = await receiving.WaitAsync(PassTimeout);
        TimeSpan took = Stopwatch.GetElapsedTime(started);
        await stop.CancelAsync();
        source.Dispose();
        await flooding.WaitAsync(PassTimeout);

        Assert.AreEqual(MigrationStatus.Failed, result.Status, result.Reason);
        Assert.Contains("2 s", result.Reason!);
        Assert.IsGreaterThan(1, result.Rounds, "rounds were received before the replies backed up");
        Assert.IsLessThan(Timeout * 4, took, $"the receiver gave up in time ({result.Rounds} rounds)");
    }

    /// <summary>Reads the Hello, answers HelloAck and reads nothing more; returns when it stopped reading.</summary>
    private static async Task<long> AnswerHelloThenStopReadingAsync(Socket destination)
    {
        byte[] header = new byte[MigrationProtocol.FrameHeaderSize];
        await ReceiveExactlyAsync(destination, header);
        Assert.AreEqual((byte)FrameType.Hello, header[4]);
        await ReceiveExactlyAsync(destination, new byte[BinaryPrimitives.ReadInt32LittleEndian(header)]);

        PipeWriter output = PipeWriter.Create(new NetworkStream(destination, ownsSocket: false));
        using var writer = new PageStreamWriter(output);
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(1)));
        await writer.FlushAsync();
        return Stopwatch.GetTimestamp();
    }

    private static async Task SendRoundEndsAsync(Socket source, CancellationToken ct)
    {
        var frames = new Pipe(new PipeOptions(pauseWriterThreshold: 0, resumeWriterThreshold: 0, useSynchronizationContext: false));
        using var writer = new PageStreamWriter(frames.Writer);
        writer.AppendHello(new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, 16 * MiB)], 1, "stalled source"));
        await writer.FlushAsync(ct);
        try
        {
            for (int round = 0; ; round++)
            {
                writer.AppendRoundEnd(new RoundEnd(round, 0, 0));
                if (round % 4096 == 0)
                {
                    await writer.FlushAsync(ct);
                    ReadResult read = await frames.Reader.ReadAsync(ct);
                    foreach (ReadOnlyMemory<byte> segment in read.Buffer)
                    {
                        await source.SendAsync(segment, SocketFlags.None, ct);
                    }

                    frames.Reader.AdvanceTo(read.Buffer.End);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // The receiver hung up, or the test is over.
        }
    }

    private static async Task ReceiveExactlyAsync(Socket socket, Memory<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            int received = await socket.ReceiveAsync(buffer, SocketFlags.None);
            Assert.AreNotEqual(0, received, "the source hung up");
            buffer = buffer[received..];
        }
    }
}
