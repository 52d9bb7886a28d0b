using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.IntegrationTests.TestSupport;

/// <summary>The fault proxy itself, between two plain sockets on 127.0.0.1.</summary>
[TestClass]
public sealed class FaultProxyTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [TestMethod]
    [Timeout(60_000, CooperativeCancellation = true)]
    public async Task Forwarding_IsByteExactBothWays_OverConnectionsInSequence()
    {
        await using var target = new Target();
        await using FaultProxy proxy = FaultProxy.Start(target.EndPoint);
        var random = new Random(7);
        long up = 0, down = 0;
        for (int connection = 0; connection < 2; connection++)
        {
            byte[] request = new byte[(3 << 20) + 17];
            byte[] response = new byte[(1 << 20) + 5];
            random.NextBytes(request);
            random.NextBytes(response);
            (Socket client, Socket server) = await target.ConnectThroughAsync(proxy);
            using (client)
            using (server)
            {
                Task<byte[]> atServer = Task.Run(async () =>
                {
                    await SendAndCloseAsync(server, response);
                    return await ReadToEndAsync(server);
                });
                await SendAndCloseAsync(client, request);
                byte[] atClient = await ReadToEndAsync(client);
                CollectionAssert.AreEqual(request, await atServer.WaitAsync(Timeout), "source → destination");
                CollectionAssert.AreEqual(response, atClient, "destination → source");
            }

            up += request.Length;
            down += response.Length;
        }

        Assert.AreEqual(2, proxy.Connections);
        Assert.AreEqual(up, proxy.BytesForwarded(Direction.ToDestination));
        Assert.AreEqual(down, proxy.BytesForwarded(Direction.ToSource));
    }

    [TestMethod]
    [DataRow("before", 0, 152, 4)]
    [DataRow("after", 0, 304, 8)]
    [DataRow("inside", 10, 152 + 8 + 10, 4)]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task FrameTrigger_FiresAtTheNthFrameOfItsType_AtTheChosenPoint(string point, int inside, int expectedBytes, int expectedFrames)
    {
        // Pages frames of 40 bytes with a RoundEnd of 32 bytes after every third: the 4th Pages
        // frame starts at 152, the 2nd RoundEnd ends at 304.
        byte[] stream = Frames(Enumerable.Range(0, 12).Select(i => i % 4 == 3 ? (FrameType.RoundEnd, 24) : (FrameType.Pages, 32)));
        Trigger when = point switch
        {
            "before" => Trigger.BeforeFrame(FrameType.Pages, occurrence: 4),
            "after" => Trigger.AfterRoundEnd(0).Then(Trigger.AfterFrame(FrameType.RoundEnd)),
            _ => Trigger.InsideFrame(FrameType.Pages, inside, occurrence: 4),
        };

        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        ArmedFault cut = proxy.Arm(Fault.CutAfter(0), when);
        await client.SendAsync(stream);
        byte[] arrived = await ReadToEndAsync(server);
        await cut.Fired.WaitAsync(Timeout);
        CollectionAssert.AreEqual(stream.Take(expectedBytes).ToArray(), arrived);

        IReadOnlyList<ProxyFrame> frames = proxy.Frames(Direction.ToDestination);
        Assert.HasCount(expectedFrames, frames, "whole frames recorded");
        Assert.IsTrue(frames.All(f => f.Connection == 0 && f.Head.Length == f.Length));
        Assert.AreEqual(expectedBytes, proxy.BytesForwarded(Direction.ToDestination));
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task FrameTrigger_TakesTypesItDoesNotName_AndKeepsEachFramesHead()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        ArmedFault cut = proxy.Arm(Fault.CutAfter(0), Trigger.AfterFrame((FrameType)13, occurrence: 2, Direction.ToSource));
        byte[] replies = Frames([((FrameType)12, 3), ((FrameType)13, 0), ((FrameType)13, 5), ((FrameType)14, 1)]);
        await server.SendAsync(replies);
        byte[] arrived = await ReadToEndAsync(client);
        await cut.Fired.WaitAsync(Timeout);
        Assert.AreEqual(8 + 3 + 8 + 8 + 5, arrived.Length);

        ProxyFrame[] frames = [.. proxy.Frames(Direction.ToSource)];
        CollectionAssert.AreEqual(new[] { (FrameType)12, (FrameType)13, (FrameType)13 }, frames.Select(f => f.Type).ToArray());
        CollectionAssert.AreEqual(new byte[] { 0, 1, 2, 3, 4 }, frames[2].Head, "the payload as sent");
        Assert.IsEmpty(proxy.Frames(Direction.ToDestination));
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Reset_GivesBothPeersAConnectionReset()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        await proxy.Arm(Fault.Reset).Fired.WaitAsync(Timeout);
        SocketException atClient = await Assert.ThrowsAsync<SocketException>(() => ReadToEndAsync(client));
        SocketException atServer = await Assert.ThrowsAsync<SocketException>(() => ReadToEndAsync(server));
        Assert.AreEqual(SocketError.ConnectionReset, atClient.SocketErrorCode);
        Assert.AreEqual(SocketError.ConnectionReset, atServer.SocketErrorCode);
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task BlackHole_ForwardsNothingMore_AndLeavesBothSocketsOpen()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        await client.SendAsync(Frames([(FrameType.Hello, 4)]));
        await ReadExactlyAsync(server, 12);
        ArmedFault hole = proxy.Arm(Fault.BlackHole, Trigger.AfterFrame(FrameType.HelloAck, 1, Direction.ToSource));
        await server.SendAsync(Frames([(FrameType.HelloAck, 16)]));
        await ReadExactlyAsync(client, 24);
        await hole.Fired.WaitAsync(Timeout);

        // Now silent both ways, and neither peer sees an end of stream.
        await client.SendAsync(new byte[1000]);
        await server.SendAsync(new byte[1000]);
        Assert.IsFalse(await ArrivesWithinAsync(server, TimeSpan.FromMilliseconds(300)), "nothing reaches the destination");
        Assert.IsFalse(await ArrivesWithinAsync(client, TimeSpan.FromMilliseconds(300)), "nothing reaches the source");
        Assert.AreEqual(12L, proxy.BytesForwarded(Direction.ToDestination));
        Assert.AreEqual(24L, proxy.BytesForwarded(Direction.ToSource));

        // Disposing ends the silent pumps within its bound, and the peers then see the close.
        await proxy.DisposeAsync();
        Assert.IsEmpty(await ReadToEndAsync(server));
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task Delay_AddsItsLatencyToEveryChunk()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        proxy.Arm(Fault.Delay(TimeSpan.FromMilliseconds(200)));
        long start = System.Diagnostics.Stopwatch.GetTimestamp();
        await client.SendAsync(new byte[] { 1 });
        await ReadExactlyAsync(server, 1);
        await server.SendAsync(new byte[] { 2 });
        await ReadExactlyAsync(client, 1);
        TimeSpan roundTrip = System.Diagnostics.Stopwatch.GetElapsedTime(start);
        // One chunk each way, 200 ms each; timers may fire a little early.
        Assert.IsGreaterThanOrEqualTo(TimeSpan.FromMilliseconds(390), roundTrip, $"round trip {roundTrip.TotalMilliseconds:F1} ms");
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task CutAfter_LetsExactlyThatManyBytesThroughInItsDirection_ThenClosesBoth()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        proxy.Arm(Fault.CutAfter(1000, Direction.ToSource));
        byte[] reply = new byte[5000];
        new Random(3).NextBytes(reply);
        await server.SendAsync(reply);
        CollectionAssert.AreEqual(reply.Take(1000).ToArray(), await ReadToEndAsync(client));
        Assert.IsEmpty(await ReadToEndAsync(server), "the other side closes too");
    }

    [TestMethod]
    [Timeout(30_000, CooperativeCancellation = true)]
    public async Task HalfOpen_EndsOneDirection_WhileTheOtherKeepsFlowing()
    {
        await using Pair pair = await Pair.OpenAsync();
        (FaultProxy proxy, Socket client, Socket server) = pair;
        await proxy.Arm(Fault.HalfOpen(Direction.ToSource)).Fired.WaitAsync(Timeout);
        Assert.IsEmpty(await ReadToEndAsync(client), "the source reads end of stream");
        await client.SendAsync(new byte[] { 1, 2, 3 });
        CollectionAssert.AreEqual(new byte[] { 1, 2, 3 }, await ReadExactlyAsync(server, 3), "the source's data still arrives");
        await server.SendAsync(new byte[] { 9 });
        client.Shutdown(SocketShutdown.Send);
        Assert.IsEmpty(await ReadToEndAsync(server), "the source's end of stream arrives too");

        Assert.AreEqual(3L, proxy.BytesForwarded(Direction.ToDestination));
        Assert.AreEqual(0L, proxy.BytesForwarded(Direction.ToSource));
    }

    /// <summary>Frames with zeroed headers but for length and type, each payload counting 0, 1, 2…</summary>
    private static byte[] Frames(IEnumerable<(FrameType Type, int Length)> frames)
    {
        var stream = new MemoryStream();
        foreach ((FrameType type, int length) in frames)
        {
            byte[] frame = new byte[8 + length];
            BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)length);
            frame[4] = (byte)type;
            for (int i = 0; i < length; i++)
            {
                frame[8 + i] = (byte)i;
            }

            stream.Write(frame);
        }

        return stream.ToArray();
    }

    private static async Task SendAndCloseAsync(Socket socket, byte[] data)
    {
        await socket.SendAsync(data);
        socket.Shutdown(SocketShutdown.Send);
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        var all = new MemoryStream();
        byte[] buffer = new byte[64 * 1024];
        int read;
        while ((read = await socket.ReceiveAsync(buffer, timeout.Token)) > 0)
        {
            all.Write(buffer, 0, read);
        }

        return all.ToArray();
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        using var timeout = new CancellationTokenSource(Timeout);
        byte[] buffer = new byte[count];
        for (int got = 0; got < count;)
        {
            int read = await socket.ReceiveAsync(buffer.AsMemory(got), timeout.Token);
            Assert.AreNotEqual(0, read, $"end of stream after {got} of {count} bytes");
            got += read;
        }

        return buffer;
    }

    private static async Task<bool> ArrivesWithinAsync(Socket socket, TimeSpan wait)
    {
        using var timeout = new CancellationTokenSource(wait);
        try
        {
            return await socket.ReceiveAsync(new byte[1], timeout.Token) >= 0;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>A proxy with one connection through it, from a client socket to the server socket it reached.</summary>
    private sealed record Pair(Target Target, FaultProxy Proxy, Socket Client, Socket Server) : IAsyncDisposable
    {
        internal static async Task<Pair> OpenAsync()
        {
            var target = new Target();
            FaultProxy proxy = FaultProxy.Start(target.EndPoint);
            (Socket client, Socket server) = await target.ConnectThroughAsync(proxy);
            return new Pair(target, proxy, client, server);
        }

        internal void Deconstruct(out FaultProxy proxy, out Socket client, out Socket server) => (proxy, client, server) = (Proxy, Client, Server);

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            Server.Dispose();
            await Proxy.DisposeAsync();
            await Target.DisposeAsync();
        }
    }

    /// <summary>A listener on 127.0.0.1 standing in for the destination.</summary>
    private sealed class Target : IAsyncDisposable
    {
        private readonly Socket _listener = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);

        internal Target()
        {
            _listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            _listener.Listen();
        }

        internal IPEndPoint EndPoint => (IPEndPoint)_listener.LocalEndPoint!;

        /// <summary>Connects a client to the proxy and returns it with the connection the proxy opened here.</summary>
        internal async Task<(Socket Client, Socket Server)> ConnectThroughAsync(FaultProxy proxy)
        {
            using var timeout = new CancellationTokenSource(Timeout);
            var client = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await client.ConnectAsync(IPAddress.Loopback, proxy.Port, timeout.Token);
            Socket server = await _listener.AcceptAsync(timeout.Token);
            return (client, server);
        }

        public ValueTask DisposeAsync()
        {
            _listener.Dispose();
            return ValueTask.CompletedTask;
        }
    }
}
