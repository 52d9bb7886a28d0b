using System;
using System.IO.Pipelines;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>One connection of a migration: its writer and channel, the work token a lost destination cancels, and who disposes the connection.</summary>
[TestClass]
public sealed class DestinationLinkTests
{
    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public async Task Dispose_ClosesTheConnectionOnlyWhenTheLinkOwnsIt(bool owned)
    {
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            DestinationLink link = Open(source, owned);
            Assert.AreEqual(source.RemoteAddress, link.RemoteAddress);
            await link.DisposeAsync();

            // An owned connection is closed: the destination sees its end. A given one stays open.
            ValueTask<ReadResult> read = destination.Input.ReadAsync();
            await Task.WhenAny(read.AsTask(), Task.Delay(200));
            Assert.AreEqual(owned, read.IsCompleted && read.Result.IsCompleted);
        }
    }

    [TestMethod]
    public async Task ADestinationThatGoesAway_CancelsTheLinksWork()
    {
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            await using DestinationLink link = Open(source, owned: false);
            Assert.IsFalse(link.Work.IsCancellationRequested);

            await destination.Output.CompleteAsync();

            FakeClock.WaitFor(() => link.Work.IsCancellationRequested, "the work token cancelled after the destination left");
            Assert.IsNotNull(link.Channel.Failure);
        }
    }

    [TestMethod]
    public async Task SendErrorQuietly_TellsTheDestinationTheSourceAborted()
    {
        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            await using DestinationLink link = Open(source, owned: false);
            await link.SendErrorQuietlyAsync("gave up");

            using var vm = new ScriptedVm();
            ErrorFrame error = await new ScriptedSource(destination, vm).ExpectAsync<ErrorFrame>();
            Assert.AreEqual(new MigrationError(MigrationErrorCode.SourceAborted, "gave up"), error.Error);
        }
    }

    private static DestinationLink Open(IMigrationConnection connection, bool owned) =>
        new(connection, owned, new MigrationOptions(), () => MigrationPhase.Handshake, CancellationToken.None);
}
