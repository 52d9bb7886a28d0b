using System;
using System.Net;
using System.Net.Sockets;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

[TestClass]
public sealed class CoalescingSocketStreamTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [TestMethod]
    public async Task WritesGoOutAtOnceUntilCoalescing_ThenOnFlushOrAFullBuffer()
    {
        (Socket sender, Socket receiver) = await ConnectedPairAsync();
        using (sender)
        using (receiver)
        {
            var stream = new CoalescingSocketStream(sender);
            await stream.WriteAsync(new byte[] { 1, 2, 3 });
            Assert.AreEqual(3, await ReceiveAsync(receiver, 3), "a write before coalescing is sent at once");

            stream.Coalesce = true;
            await stream.WriteAsync(new byte[100]);
            await Task.Delay(50);
            Assert.AreEqual(0, receiver.Available, "a coalesced write waits for the flush");
            await stream.FlushAsync();
            Assert.AreEqual(100, await ReceiveAsync(receiver, 100));

            // More than the 256 KiB buffer: the full buffer goes out without a flush.
            byte[] large = new byte[300 * 1024];
            new Random(3).NextBytes(large);
            Task<int> receiving = ReceiveAsync(receiver, 256 * 1024);
            await stream.WriteAsync(large);
            Assert.AreEqual(256 * 1024, await receiving.WaitAsync(Timeout));
            await stream.FlushAsync();
            Assert.AreEqual(large.Length - (256 * 1024), await ReceiveAsync(receiver, large.Length - (256 * 1024)));
        }
    }

    private static async Task<int> ReceiveAsync(Socket socket, int count)
    {
        byte[] buffer = new byte[count];
        int total = 0;
        while (total < count)
        {
            int read = await socket.ReceiveAsync(buffer.AsMemory(total), SocketFlags.None).AsTask().WaitAsync(Timeout);
            if (read == 0)
            {
                break;
            }

            total += read;
        }

        return total;
    }

    private static async Task<(Socket Sender, Socket Receiver)> ConnectedPairAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        Task<Socket> accepting = listener.AcceptAsync();
        await sender.ConnectAsync(listener.LocalEndPoint!);
        return (sender, await accepting.WaitAsync(Timeout));
    }
}
