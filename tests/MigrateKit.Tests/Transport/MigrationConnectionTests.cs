using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Transport;
using static MigrateKit.Tests.Transport.TransportTestSupport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed partial class MigrationConnectionTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [TestMethod]
    public async Task Tcp_ListenerAcceptsAndFramesRoundTripBothWays()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        Match m = TcpAddress().Match(listener.LocalAddress);
        Assert.IsTrue(m.Success, listener.LocalAddress);
        Assert.AreNotEqual(0, int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));

        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);

        Assert.AreEqual(listener.LocalAddress, client.RemoteAddress);
        Assert.IsTrue(TcpAddress().IsMatch(server.RemoteAddress), server.RemoteAddress);
        await ExchangeAsync(client, server);
    }

    [TestMethod]
    public async Task Disposing_LeavesNoTimerBehind()
    {
        // The drain on disposal waits at most 5 s; a timer raced against it would outlive every connection by that much.
        long before = Timer.ActiveCount;
        await using (MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0"))
        {
            Task<IMigrationConnection> accepting = listener.AcceptAsync();
            await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
            await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
            await ExchangeAsync(client, server);
        }

        // Other tests' timers may still be expiring: wait for the count to come back, well short of 5 s.
        long deadline = Environment.TickCount64 + 2000;
        while (Timer.ActiveCount > before && Environment.TickCount64 < deadline)
        {
            await Task.Delay(10);
        }

        Assert.IsLessThanOrEqualTo(before, Timer.ActiveCount, "timers left after both ends were disposed");
    }

    [TestMethod]
    public async Task Tcp_HostPortWithoutSchemeConnects()
    {
        await using MigrationListener listener = MigrationListener.Listen("127.0.0.1:0");
        Assert.StartsWith("tcp:127.0.0.1:", listener.LocalAddress);
        string hostPort = listener.LocalAddress["tcp:".Length..];
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(hostPort).WaitAsync(Timeout);
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
        await ExchangeAsync(client, server);
    }

    [TestMethod]
    public async Task Unix_ListenerAcceptsAndFramesRoundTripBothWays()
    {
        string dir = Directory.CreateTempSubdirectory("mk-transport-").FullName;
        try
        {
            string path = Path.Combine(dir, "migrate.sock");
            await using (MigrationListener listener = MigrationListener.Listen("unix:" + path))
            {
                Assert.AreEqual("unix:" + path, listener.LocalAddress);
                Assert.IsTrue(File.Exists(path));

                Task<IMigrationConnection> accepting = listener.AcceptAsync();
                await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
                await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
                Assert.AreEqual("unix:" + path, client.RemoteAddress);
                await ExchangeAsync(client, server);
            }

            Assert.IsFalse(File.Exists(path), "disposing the listener removes the socket file");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public async Task Unix_StaleSocketFileIsReplaced()
    {
        string dir = Directory.CreateTempSubdirectory("mk-transport-").FullName;
        try
        {
            string path = Path.Combine(dir, "stale.sock");
            UnixSocketFileTests.LeaveStaleSocket(path);
            await using MigrationListener listener = MigrationListener.Listen("unix:" + path);
            Task<IMigrationConnection> accepting = listener.AcceptAsync();
            await using IMigrationConnection client = await MigrationConnector.ConnectAsync("unix:" + path).WaitAsync(Timeout);
            await using IMigrationConnection server = await accepting.WaitAsync(Timeout);
            await ExchangeAsync(client, server);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public async Task ConnectingToAClosedPort_ThrowsPromptly()
    {
        string address;
        await using (MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0"))
        {
            address = listener.LocalAddress;
        }

        var clock = Stopwatch.StartNew();
        MigrationConnectionException ex = await Assert.ThrowsExactlyAsync<MigrationConnectionException>(() => MigrationConnector.ConnectAsync(address).WaitAsync(Timeout));
        Assert.IsLessThan(5.0, clock.Elapsed.TotalSeconds);
        Assert.AreEqual(address, ex.Address);
        Assert.IsInstanceOfType<IOException>(ex);
        Assert.AreEqual($"{address}: nothing listens there (connection refused)", ex.Message);
    }

    [TestMethod]
    public async Task ConnectingToAMissingUnixSocket_Throws()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mk-missing-{Guid.NewGuid():N}.sock");
        MigrationConnectionException ex = await Assert.ThrowsExactlyAsync<MigrationConnectionException>(() => MigrationConnector.ConnectAsync("unix:" + path).WaitAsync(Timeout));
        Assert.AreEqual("unix:" + path, ex.Address);
        Assert.AreEqual($"unix:{path}: no such socket file (no receiver listens there)", ex.Message);
    }

    [TestMethod]
    public async Task ConnectingToAUnixSocketFileNobodyListensOn_SaysItIsLeftOver()
    {
        string path = Path.Combine(Path.GetTempPath(), $"mk-stale-{Guid.NewGuid():N}.sock");

        // Bound but not listening: to a client, the same as the file a killed receiver leaves behind.
        using var bound = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        bound.Bind(new UnixDomainSocketEndPoint(path));

        MigrationConnectionException ex = await Assert.ThrowsExactlyAsync<MigrationConnectionException>(() => MigrationConnector.ConnectAsync("unix:" + path).WaitAsync(Timeout));
        Assert.AreEqual($"unix:{path}: nothing listens on this socket (a file left by a receiver that stopped)", ex.Message);
    }

    [TestMethod]
    [DataRow("nope")]
    [DataRow("tcp:host")]
    [DataRow("tcp:h:99999")]
    [DataRow("tcp:h:-1")]
    [DataRow("tcp:h:")]
    [DataRow("tcp::80")]
    [DataRow("unix:")]
    [DataRow("")]
    [DataRow("   ")]
    [DataRow("udp:127.0.0.1:7000")]
    [DataRow("tcp:[]:80")]
    public async Task MalformedAddresses_ThrowArgumentException(string address)
    {
        await Assert.ThrowsExactlyAsync<ArgumentException>(() => MigrationConnector.ConnectAsync(address));
        Assert.ThrowsExactly<ArgumentException>(() => MigrationListener.Listen(address));
        Assert.ThrowsExactly<ArgumentException>(() => MigrationConnector.NormalizeAddress(address));
    }

    [TestMethod]
    [DataRow("udp:127.0.0.1:7000", "'udp:127.0.0.1:7000' has an unknown scheme 'udp:'")]
    [DataRow("tcp:udp:10.0.0.2:7000", "'tcp:udp:10.0.0.2:7000' has an unknown scheme 'udp:'")]
    [DataRow("http://h:80", "'http://h:80' has an unknown scheme 'http:'")]
    [DataRow("tcp:[]:80", "'tcp:[]:80' has no host")]
    public void AnotherScheme_IsNamed_NotResolvedAsAHostName(string address, string message)
    {
        // It was taken for the host name "udp:127.0.0.1", which no resolver knows.
        StringAssert.StartsWith(Assert.ThrowsExactly<ArgumentException>(() => MigrationListener.Listen(address)).Message, message);
    }

    [TestMethod]
    public void ListeningOnAUnixSocketInAMissingFolder_NamesTheFolder()
    {
        // It said "cannot listen (AddressNotAvailable: Cannot assign requested address)".
        string folder = Path.Combine(Path.GetTempPath(), $"mk-missing-{Guid.NewGuid():N}");
        MigrationConnectionException e = Assert.ThrowsExactly<MigrationConnectionException>(() => MigrationListener.Listen($"unix:{folder}/receive.sock"));
        Assert.AreEqual($"unix:{folder}/receive.sock: cannot listen: the folder {folder} does not exist", e.Message);
    }

    [TestMethod]
    [DataRow("tcp:127.0.0.1:7000", "tcp:127.0.0.1:7000")]
    [DataRow("127.0.0.1:7000", "tcp:127.0.0.1:7000")]
    [DataRow("[::1]:7000", "tcp:[::1]:7000")]
    [DataRow("::1:7000", "tcp:[::1]:7000")]
    [DataRow("tcp:host2.example:7000", "tcp:host2.example:7000")]
    [DataRow("unix:/run/mk.sock", "unix:/run/mk.sock")]
    public void NormalizeAddress_GivesTheCanonicalForm(string address, string canonical)
    {
        Assert.AreEqual(canonical, MigrationConnector.NormalizeAddress(address));
    }

    [TestMethod]
    public async Task Tcp_PeerDisposalIsCleanEofThenWritesFail()
    {
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        await AssertPeerDisposalAsync(listener);
    }

    [TestMethod]
    public async Task Unix_PeerDisposalIsCleanEofThenWritesFail()
    {
        string dir = Directory.CreateTempSubdirectory("mk-transport-").FullName;
        try
        {
            await using MigrationListener listener = MigrationListener.Listen("unix:" + Path.Combine(dir, "peer.sock"));
            await AssertPeerDisposalAsync(listener);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [TestMethod]
    public async Task InMemory_PairRoundTripsAndPeerDisposalIsCleanEof()
    {
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using IMigrationConnection s = source;
        Assert.AreEqual("memory", source.RemoteAddress);
        await ExchangeAsync(source, destination);

        await destination.DisposeAsync();
        Assert.IsFalse(await new PageStreamReader(source.Input).ReadAsync(new RecordingHandler()).AsTask().WaitAsync(Timeout));
        using var writer = new PageStreamWriter(source.Output);
        writer.AppendComplete();
        await Assert.ThrowsAsync<IOException>(() => writer.FlushAsync().AsTask());
    }

    [TestMethod]
    [DataRow((2 << 20) + 9, 1 << 20)]
    [DataRow(3 << 20, 64 << 10)]
    [DataRow((2 << 20) + 9, 0)]
    public async Task Tcp_MaxSizeFramesArriveWithSmallBuffersAndALateReader(int pause, int resume)
    {
        // A receiver that starts reading late lets the receive pump fill the inbound pipe up to its
        // pause threshold; a partial frame at that point must not stall the stream.
        var options = new PageStreamOptions
        {
            PauseWriterThreshold = pause,
            ResumeWriterThreshold = resume,
        };
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", options);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress, options).WaitAsync(Timeout);
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);

        byte[] state = new byte[options.MaxFramePayload];
        new Random(9).NextBytes(state);
        using var writer = new PageStreamWriter(client.Output, options);
        Task sending = Task.Run(async () =>
        {
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
            for (int i = 0; i < 4; i++)
            {
                state[0] = (byte)i;
                writer.AppendDeviceState(state);
                await writer.FlushAsync();
            }

            writer.AppendComplete();
            await writer.FlushAsync();
        });

        await Task.Delay(500);
        List<ReceivedFrame> frames = await ReadAllUntilCompleteAsync(server, options).WaitAsync(Timeout);
        await sending.WaitAsync(Timeout);
        Assert.HasCount(6, frames);
        for (int i = 0; i < 4; i++)
        {
            byte[] got = ((DeviceStateFrame)frames[i + 1]).State;
            Assert.AreEqual((byte)i, got[0]);
            Assert.IsTrue(got.AsSpan(1).SequenceEqual(state.AsSpan(1)));
        }
    }

    [TestMethod]
    public async Task Tcp_DisposingWhileThePeerStreamsUnreadData_DoesNotHang()
    {
        var options = new PageStreamOptions { PauseWriterThreshold = (2 << 20) + 9, ResumeWriterThreshold = 1 << 20 };
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0", options);
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        await using IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress, options).WaitAsync(Timeout);
        IMigrationConnection server = await accepting.WaitAsync(Timeout);

        // The client streams until backpressure stops it; the server never reads.
        using var writer = new PageStreamWriter(client.Output, options);
        byte[] state = new byte[1 << 20];
        writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero));
        Task streaming = Task.Run(async () =>
        {
            while (true)
            {
                writer.AppendDeviceState(state);
                await writer.FlushAsync();
            }
        });

        // Wait until the receiving side's buffer is full (the stream stalls).
        long last = -1;
        while (writer.BytesWritten != last)
        {
            last = writer.BytesWritten;
            await Task.Delay(200);
        }

        Assert.IsFalse(streaming.IsCompleted);
        await server.DisposeAsync().AsTask().WaitAsync(Timeout);

        // The streaming side then learns that the peer is gone.
        await Assert.ThrowsAsync<IOException>(() => streaming.WaitAsync(Timeout));
    }

    private static async Task<List<ReceivedFrame>> ReadAllUntilCompleteAsync(IMigrationConnection connection, PageStreamOptions? options = null)
    {
        var reader = new PageStreamReader(connection.Input, options);
        var handler = new RecordingHandler();
        while (handler.Frames.Count == 0 || handler.Frames[^1] is not CompleteFrame)
        {
            Assert.IsTrue(await reader.ReadAsync(handler), "unexpected end of stream");
        }

        return handler.Frames;
    }

    private static async Task AssertPeerDisposalAsync(MigrationListener listener)
    {
        Task<IMigrationConnection> accepting = listener.AcceptAsync();
        IMigrationConnection client = await MigrationConnector.ConnectAsync(listener.LocalAddress).WaitAsync(Timeout);
        await using IMigrationConnection server = await accepting.WaitAsync(Timeout);

        // What the peer wrote before disposing still arrives, then a clean EOF.
        using (var clientWriter = new PageStreamWriter(client.Output))
        {
            clientWriter.AppendError(new MigrationError(MigrationErrorCode.SourceAborted, "bye"));
            await clientWriter.FlushAsync();
        }

        await client.DisposeAsync().AsTask().WaitAsync(Timeout);
        var reader = new PageStreamReader(server.Input);
        var handler = new RecordingHandler();
        Assert.IsTrue(await reader.ReadAsync(handler).AsTask().WaitAsync(Timeout));
        Assert.AreEqual("bye", ((ErrorFrame)handler.Frames[0]).Error.Message);
        Assert.IsFalse(await reader.ReadAsync(handler).AsTask().WaitAsync(Timeout));

        using var writer = new PageStreamWriter(server.Output);
        byte[] chunk = new byte[64 * 1024];
        var clock = Stopwatch.StartNew();
        IOException? failure = null;
        while (failure is null && clock.Elapsed < Timeout)
        {
            try
            {
                writer.AppendDeviceState(chunk);
                await writer.FlushAsync().AsTask().WaitAsync(Timeout);
                await Task.Delay(10);
            }
            catch (IOException ex)
            {
                failure = ex;
            }
        }

        Assert.IsNotNull(failure, "writing to a disposed peer never failed");
    }

    internal static async Task ExchangeAsync(IMigrationConnection source, IMigrationConnection destination)
    {
        const ulong pages = 600;
        using GuestMemoryLayout memory = RandomMemory(pages, seed: 10);
        GuestMemoryRegion region = memory.Regions[0];
        var hello = new MigrationHello(MigrationProtocol.Version, [new GuestMemoryRegionSpec(0, pages * (ulong)Page)], 2, "vm");
        var sentDigest = new RegionDigestAccumulator(pages);

        Task sending = Task.Run(async () =>
        {
            using var writer = new PageStreamWriter(source.Output);
            writer.AppendHello(hello);
            await writer.FlushAsync();
            for (ulong first = 0; first < pages; first += 200)
            {
                writer.AppendPages(0, region, [new PageRun(first, 200)], sentDigest);
                await writer.FlushAsync();
            }

            writer.AppendRoundEnd(new RoundEnd(0, pages, (ulong)writer.BytesWritten));
            writer.AppendDigests([new RegionDigest(0, sentDigest.Value)]);
            writer.AppendComplete();
            await writer.FlushAsync();
        });

        List<ReceivedFrame> received = await ReadAllUntilCompleteAsync(destination).WaitAsync(Timeout);
        await sending.WaitAsync(Timeout);

        Assert.AreEqual("vm", ((HelloFrame)received[0]).Hello.SourceName);
        var receivedDigest = new RegionDigestAccumulator(pages);
        ulong? announced = null;
        foreach (ReceivedFrame frame in received)
        {
            if (frame is PagesRun run)
            {
                for (int i = 0; i < run.Count; i++)
                {
                    receivedDigest.Update(run.FirstPage + (ulong)i, run.Data.AsSpan(i * Page, Page));
                }
            }
            else if (frame is DigestsFrame digests)
            {
                announced = digests.Digests[0].Digest;
            }
        }

        Assert.AreEqual(RegionDigestAccumulator.Compute(region), announced);
        Assert.AreEqual(announced, receivedDigest.Value);

        // And back.
        using (var writer = new PageStreamWriter(destination.Output))
        {
            writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(2)));
            writer.AppendAck(new CompletionAck(TimeSpan.FromMilliseconds(5)));
            writer.AppendComplete();
            await writer.FlushAsync();
        }

        List<ReceivedFrame> back = await ReadAllUntilCompleteAsync(source).WaitAsync(Timeout);
        Assert.AreEqual(new HelloAckFrame(new HelloAck(MigrationProtocol.Version, TimeSpan.FromMilliseconds(2))), back[0]);
        Assert.AreEqual(new AckFrame(new CompletionAck(TimeSpan.FromMilliseconds(5))), back[1]);
    }

    [GeneratedRegex(@"^tcp:127\.0\.0\.1:(\d+)$")]
    private static partial Regex TcpAddress();
}
