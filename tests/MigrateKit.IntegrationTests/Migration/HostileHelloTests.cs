using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.IntegrationTests.Migration;

/// <summary>
/// The attack from issue 11 over a real loopback TCP socket: one Hello announcing 8 regions of
/// 1 TiB. The destination answers with an Error naming its limit, builds nothing, and its
/// resident memory stays where it was (before the limits it mapped 8 TiB and grew by gigabytes).
/// </summary>
[TestClass]
public sealed class HostileHelloTests
{
    internal const ulong TiB = 1UL << 40;
    private const long MaxRssGrowth = 64L << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(8, 1, TiB, "Hello announces 8 TiB; this destination accepts at most 32 GiB")]
    [DataRow(1024, 1, 1UL << 20, "Hello announces 1024 memory regions; this destination accepts at most 64")]
    [DataRow(1, 100_000, 1UL << 30, "Hello announces 100000 vCPUs; this destination accepts at most 64")]
    public async Task HostileHello_IsRefusedWithAnErrorNamingTheLimit_AndTheReceiverDoesNotGrow(int regions, int vcpus, ulong regionSize, string message)
    {
        int built = 0;
        var receiver = new MigrationReceiver(hello =>
        {
            built++;
            return new HostVm(hello.Regions);
        }, new MigrationReceiverOptions { MaxMemory = 32UL << 30 });
        await using MigrationListener listener = MigrationListener.Listen("tcp:127.0.0.1:0");
        GC.Collect();
        long rssBefore = ResidentBytes();

        Task<ReceiveResult> receiving = Task.Run(async () =>
        {
            await using IMigrationConnection incoming = await listener.AcceptAsync();
            return await receiver.ReceiveAsync(incoming);
        });
        List<ReceivedFrame> reply = await SendAndReadReplyAsync(listener.LocalAddress, Hello(regions, vcpus, regionSize));
        ReceiveResult result = await receiving.WaitAsync(Timeout);
        long grown = ResidentBytes() - rssBefore;
        TestContext.WriteLine($"RSS before {Units.FormatBytes(rssBefore)}, grown by {Units.FormatBytes(grown)}");

        ErrorFrame error = Assert.IsInstanceOfType<ErrorFrame>(reply.Single(), "the destination answers one Error and hangs up");
        Assert.AreEqual(message, error.Error.Message);
        Assert.AreEqual(MigrationErrorCode.DestinationFailure, error.Error.Code);
        Assert.AreEqual(MigrationStatus.Failed, result.Status);
        Assert.IsInstanceOfType<MigrationLimitException>(result.Error);
        Assert.AreEqual(0, built, "no VM was built for the Hello");
        Assert.IsLessThan(MaxRssGrowth, grown, $"the receiver's RSS grew by {Units.FormatBytes(grown)}");
    }

    /// <summary>A Hello of <paramref name="regions"/> adjacent regions of <paramref name="regionSize"/> bytes each.</summary>
    internal static MigrationHello Hello(int regions, int vcpus, ulong regionSize) => new(MigrationProtocol.Version,
        Enumerable.Range(0, regions).Select(i => new GuestMemoryRegionSpec((ulong)i * regionSize, regionSize)).ToList(), vcpus, "attacker");

    /// <summary>Sends one Hello as a source would and collects every frame until the destination closes.</summary>
    internal static async Task<List<ReceivedFrame>> SendAndReadReplyAsync(string address, MigrationHello hello)
    {
        await using IMigrationConnection source = await MigrationConnector.ConnectAsync(address).WaitAsync(Timeout);
        using (var writer = new PageStreamWriter(source.Output))
        {
            writer.AppendHello(hello);
            await writer.FlushAsync();
        }

        return await TransportTestSupport.ReadAllAsync(source.Input).WaitAsync(Timeout);
    }

    /// <summary>VmRSS of this process, from /proc/self/status.</summary>
    private static long ResidentBytes()
    {
        string line = File.ReadLines("/proc/self/status").Single(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line["VmRSS:".Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture) * 1024;
    }
}
