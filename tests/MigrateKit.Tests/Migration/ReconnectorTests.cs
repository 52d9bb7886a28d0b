using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Net.Sockets;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>Which failures are worth a new connection, and the bounded retries of <see cref="Reconnector.ReconnectAsync{T}"/>.</summary>
[TestClass]
public sealed class ReconnectorTests
{
    public static IEnumerable<object[]> Failures =>
    [
        [new IOException("reset"), true],
        [new SocketException((int)SocketError.ConnectionRefused), true],
        [new TimeoutException("no answer"), true],
        [new MigrationException(MigrationPhase.Send, "lost", new IOException("reset")), true],
        [new IOException("wrapped", new MigrationProtocolException("RoundAck", "round", "x")), true],
        [new MigrationProtocolException("RoundAck", "round", "a RoundAck for a round not sent"), false],
        [MigrationProtocolException.Cut(3), true],
        [new MigrationException(MigrationPhase.Send, "reading failed", MigrationProtocolException.Cut(3)), true],
        [new DestinationRefusedException(new MigrationError(MigrationErrorCode.DigestMismatch, "differs")), false],
        [new MigrationException(MigrationPhase.Send, "refused", new DestinationRefusedException(new MigrationError(MigrationErrorCode.DestinationFailure, "no"))), false],
        [new MigrationException(MigrationPhase.Send, "violation", new MigrationProtocolException("Ready", "type", "x")), false],
        [new InvalidOperationException("a bug"), false],
        [new OperationCanceledException(), false],
    ];

    [TestMethod]
    [DynamicData(nameof(Failures))]
    public void IsLinkFailure_TellsALostLinkFromARefusal(Exception failure, bool link)
    {
        Assert.AreEqual(link, Reconnector.IsLinkFailure(failure), failure.ToString());
    }

    [TestMethod]
    public async Task ReconnectAsync_RetriesLinkFailures_UntilOneAttemptSucceeds()
    {
        int attempts = 0;
        var log = new ListLogger<PreCopyEngine>();
        var reconnector = new Reconnector(_ => Task.FromResult(Connection()), Options(3), log);

        int result = await reconnector.ReconnectAsync(
            (connection, _) => ++attempts < 3 ? throw new IOException($"attempt {attempts} reset") : Task.FromResult(attempts),
            CancellationToken.None).WaitAsync(EngineHarness.Timeout);

        Assert.AreEqual(3, result);
        Assert.AreEqual(1, reconnector.Reconnections, "one reconnection, however many attempts it took");

        // Each failed attempt is told as it fails: against a silent destination each one lasts the response timeout.
        Logged[] failed = [.. log.Entries.Where(e => e.EventId.Name == "ReconnectAttemptFailed")];
        Assert.HasCount(2, failed);
        Assert.StartsWith("Reconnection attempt 1 of 4 failed (attempt 1 reset); trying again in ", failed[0].Message);
        Assert.StartsWith("Reconnection attempt 2 of 4 failed (attempt 2 reset)", failed[1].Message);
        Assert.IsTrue(failed.All(e => e.Level == LogLevel.Warning));
    }

    [TestMethod]
    public async Task ReconnectAsync_GivesUpAfterTheConfiguredAttempts_WithTheLastFailure()
    {
        int connects = 0;
        var reconnector = new Reconnector(_ => ++connects > 0 ? throw new SocketException((int)SocketError.ConnectionRefused) : Task.FromResult(Connection()), Options(2));

        await Assert.ThrowsExactlyAsync<SocketException>(() => reconnector.ReconnectAsync((c, _) => Task.FromResult(0), CancellationToken.None).WaitAsync(EngineHarness.Timeout));
        Assert.AreEqual(3, connects, "the first try and two retries");
    }

    [TestMethod]
    public async Task ReconnectAsync_StopsAtARefusal()
    {
        int attempts = 0;
        var reconnector = new Reconnector(_ => Task.FromResult(Connection()), Options(5));

        await Assert.ThrowsExactlyAsync<DestinationRefusedException>(() => reconnector.ReconnectAsync<int>(
            (c, _) =>
            {
                attempts++;
                throw new DestinationRefusedException(new MigrationError(MigrationErrorCode.SessionUnavailable, "no such session"));
            },
            CancellationToken.None).WaitAsync(EngineHarness.Timeout));
        Assert.AreEqual(1, attempts, "a refusal is never retried");
    }

    [TestMethod]
    public async Task NoAttempts_OrAGivenConnection_MeanNoReconnection()
    {
        var none = new Reconnector(_ => Task.FromResult(Connection()), Options(0));
        Assert.IsFalse(none.CanReconnect);
        await Assert.ThrowsExactlyAsync<InvalidOperationException>(() => none.ReconnectAsync((c, _) => Task.FromResult(0), CancellationToken.None));

        (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
        await using (source)
        await using (destination)
        {
            var given = new Reconnector(source);
            Assert.IsFalse(given.CanReconnect);
            (IMigrationConnection first, bool owned) = await given.FirstAsync(CancellationToken.None);
            Assert.AreSame(source, first);
            Assert.IsFalse(owned, "the caller's connection stays the caller's");
        }
    }

    [TestMethod]
    public async Task FirstAsync_OpensAConnectionTheMigrationOwns()
    {
        IMigrationConnection opened = Connection();
        var reconnector = new Reconnector(_ => Task.FromResult(opened), Options(1));
        (IMigrationConnection first, bool owned) = await reconnector.FirstAsync(CancellationToken.None);
        Assert.AreSame(opened, first);
        Assert.IsTrue(owned);
        Assert.IsTrue(reconnector.CanReconnect);
        await opened.DisposeAsync();
    }

    private static MigrationOptions Options(int attempts) => new() { ReconnectAttempts = attempts, ReconnectDelay = TimeSpan.FromMilliseconds(1) };

    private static IMigrationConnection Connection() => MigrationConnector.CreateInMemoryPair().Source;
}
