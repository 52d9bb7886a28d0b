using System;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary><see cref="MigrationRecovery.QueryAsync"/> against a scripted destination on an in-memory pair.</summary>
[TestClass]
public sealed class MigrationRecoveryTests
{
    private static readonly Guid Session = Guid.Parse("0badc0de-0000-4000-8000-00000000cafe");

    [TestMethod]
    [DataRow(SessionQueryAction.Ask)]
    [DataRow(SessionQueryAction.Commit)]
    [DataRow(SessionQueryAction.Abort)]
    public async Task TheQuery_NamesTheSessionAndAction_AndTheStatusIsReturned(SessionQueryAction action)
    {
        await using Pair pair = Pair.Open();
        Task<SessionStatus> asking = MigrationRecovery.QueryAsync(pair.Source, Session, action, EngineHarness.Timeout);

        ReceivedFrame? query = await pair.Destination.NextAsync();
        await pair.Destination.SendAsync(w => w.AppendStatus(new SessionStatus(DestinationSessionState.Started, "runs here")));
        SessionStatus status = await asking.WaitAsync(EngineHarness.Timeout);

        Assert.AreEqual(new QueryFrame(new SessionQuery(MigrationProtocol.Version, Session, action)), query);
        Assert.AreEqual(new SessionStatus(DestinationSessionState.Started, "runs here"), status);
    }

    [TestMethod]
    [DataRow(0.0)]
    [DataRow(-5.0)]
    [DataRow(3e12)]
    public async Task ATimeoutThatIsNoWait_IsRefusedNamingIt_BeforeAnythingIsSent(double milliseconds)
    {
        await using Pair pair = Pair.Open();
        ArgumentOutOfRangeException ex = await Assert.ThrowsExactlyAsync<ArgumentOutOfRangeException>(() =>
            MigrationRecovery.QueryAsync(pair.Source, Session, timeout: TimeSpan.FromMilliseconds(milliseconds)));
        Assert.AreEqual("timeout", ex.ParamName);
    }

    [TestMethod]
    public async Task AnErrorAnswer_IsAQueryExceptionNamingTheCode()
    {
        await using Pair pair = Pair.Open();
        Task<SessionStatus> asking = MigrationRecovery.QueryAsync(pair.Source, Session, timeout: EngineHarness.Timeout);
        await pair.Destination.NextAsync();
        await pair.Destination.SendAsync(w => w.AppendError(new MigrationError(MigrationErrorCode.SessionUnavailable, "queries need a listening receiver")));

        MigrationQueryException ex = await Assert.ThrowsExactlyAsync<MigrationQueryException>(() => asking.WaitAsync(EngineHarness.Timeout));
        Assert.Contains("refused the query (SessionUnavailable): queries need a listening receiver", ex.Message);
        Assert.AreEqual(MigrationErrorCode.SessionUnavailable, ex.Refusal?.Code);
        Assert.AreEqual(pair.Source.RemoteAddress, ex.Address);
        Assert.IsFalse(Reconnector.IsLinkFailure(ex), "a refusal is not retried");
    }

    [TestMethod]
    public async Task ASilentDestination_TimesOut()
    {
        await using Pair pair = Pair.Open();
        MigrationQueryException ex = await Assert.ThrowsExactlyAsync<MigrationQueryException>(() =>
            MigrationRecovery.QueryAsync(pair.Source, Session, timeout: TimeSpan.FromMilliseconds(100)).WaitAsync(EngineHarness.Timeout));
        Assert.Contains("did not answer the query within 0.1 s", ex.Message);
        Assert.DoesNotContain("Migration failed", ex.Message, "a query is not a migration");
        Assert.IsNull(ex.Refusal);
        Assert.IsTrue(Reconnector.IsLinkFailure(ex), "a silent link is worth another connection");
    }

    [TestMethod]
    public async Task AClosedConnection_IsAQueryException()
    {
        await using Pair pair = Pair.Open();
        Task<SessionStatus> asking = MigrationRecovery.QueryAsync(pair.Source, Session, timeout: EngineHarness.Timeout);
        await pair.Destination.NextAsync();
        await pair.Destination.Connection.Output.CompleteAsync();

        MigrationQueryException ex = await Assert.ThrowsExactlyAsync<MigrationQueryException>(() => asking.WaitAsync(EngineHarness.Timeout));
        Assert.Contains("closed the connection without answering the query", ex.Message);
        Assert.IsTrue(Reconnector.IsLinkFailure(ex), "a closed link is worth another connection");
    }

    [TestMethod]
    public async Task AnAnswerOtherThanStatusOrError_IsAProtocolViolation()
    {
        await using Pair pair = Pair.Open();
        Task<SessionStatus> asking = MigrationRecovery.QueryAsync(pair.Source, Session, timeout: EngineHarness.Timeout);
        await pair.Destination.NextAsync();
        await pair.Destination.SendAsync(w => w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero)));

        MigrationProtocolException ex = await Assert.ThrowsExactlyAsync<MigrationProtocolException>(() => asking.WaitAsync(EngineHarness.Timeout));
        Assert.AreEqual("HelloAck", ex.Frame);
    }

    [TestMethod]
    public async Task AnEmptySessionId_IsRefusedUpFront()
    {
        await using Pair pair = Pair.Open();
        ArgumentException ex = await Assert.ThrowsExactlyAsync<ArgumentException>(() => MigrationRecovery.QueryAsync(pair.Source, Guid.Empty));
        Assert.AreEqual("sessionId", ex.ParamName);
    }

    /// <summary>The querying end, and a destination end driven by the test (read with a <see cref="ScriptedSource"/>, which reads whatever comes).</summary>
    private sealed record Pair(IMigrationConnection Source, ScriptedSource Destination, ScriptedVm Vm) : IAsyncDisposable
    {
        public static Pair Open()
        {
            (IMigrationConnection source, IMigrationConnection destination) = MigrationConnector.CreateInMemoryPair();
            var vm = new ScriptedVm();
            return new Pair(source, new ScriptedSource(destination, vm), vm);
        }

        public async ValueTask DisposeAsync()
        {
            await Source.DisposeAsync();
            await Destination.DisposeAsync();
            Vm.Dispose();
        }
    }
}
