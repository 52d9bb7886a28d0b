using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// The engine against destinations that misbehave at random, on the first connection and on the
/// ones it reconnects with: answers withheld, repeated, out of place or out of range, Statuses that
/// lie, Errors, frames only a source sends, and links closed, reset or cut inside a frame. Whatever
/// they send, every run ends; the source resumes its copy only where the destination never got a
/// Commit, or said afterwards that it released the VM; it stays paused only after a completed
/// migration or with the outcome reported unknown; and it fails only with the protocol's own errors.
/// </summary>
[TestClass]
public sealed class EngineAdversarialDestinationTests
{
    private static readonly Gen<Answer> Deviations = Gen.Frequency(
        (2, Gen.Const(new Answer(AnswerKind.Silent))),
        (2, Gen.Const(new Answer(AnswerKind.Close))),
        (2, Gen.Const(new Answer(AnswerKind.CloseInsideAFrame))),
        (2, Gen.Const(new Answer(AnswerKind.Reset))),
        (2, Gen.Int[0, 6].Select(code => new Answer(AnswerKind.Error, code))),
        (1, Gen.Int[0, 5].Select(round => new Answer(AnswerKind.RoundAck, round))),
        (1, Gen.Int[0, 4].Select(version => new Answer(AnswerKind.HelloAck, version))),
        (1, Gen.Const(new Answer(AnswerKind.Ready))),
        (1, Gen.Const(new Answer(AnswerKind.Ack))),
        (2, Gen.Int[0, 4].Select(state => new Answer(AnswerKind.Status, state))),
        (1, Gen.Const(new Answer(AnswerKind.SourceFrame))),
        (2, Gen.Const(new Answer(AnswerKind.Twice))),
        (2, Gen.Int[100, 300].Select(ms => new Answer(AnswerKind.Late, ms))),
        (1, Gen.Int[0, 255].Select(type => new Answer(AnswerKind.Garbage, type))));

    // One connection's answers: honest for a while, then one or two deviations, then honest again.
    // A run has about six requests (Hello, the RoundEnds, Complete, Commit), so each is reached.
    private static readonly Gen<Answer[]> Scripts = Gen.Select(Gen.Int[0, 7], Deviations.Array[1, 2], (honest, deviations) =>
        Enumerable.Repeat(new Answer(AnswerKind.Honest), honest).Concat(deviations).ToArray());

    [TestMethod]
    public async Task RandomDestinations_NeverLeaveTheVmOnBothSides_NorPausedWithoutAReason()
    {
        await Scripts.Array[1, 4].SampleAsync(MigrateAsync, iter: 300, threads: 1, print: Describe);
    }

    private static async Task MigrateAsync(Answer[][] scripts)
    {
        await using var h = new EngineHarness(EngineHarness.Converging);
        var log = new ListLogger<PreCopyEngine>();
        var options = new MigrationOptions
        {
            MaxDowntime = TimeSpan.FromMilliseconds(100),
            AllowThrottling = false,
            Encodings = PageEncodings.None,

            // A withheld answer ends the source's wait quickly. An honest answer slowed by a loaded
            // machine only looks withheld, and the properties hold for that too.
            ResponseTimeout = TimeSpan.FromMilliseconds(150),
            ReconnectDelay = TimeSpan.FromMilliseconds(1),
            ReconnectAttempts = 2,
        };
        var destination = new Destination();
        var ends = new List<(IMigrationConnection Source, Task Served)>();
        var engine = new PreCopyEngine(h.Source.Object, h.Tracker, options, log);
        MigrationReport report;
        try
        {
            report = await engine.MigrateAsync(ct =>
            {
                (IMigrationConnection source, IMigrationConnection end) = MigrationConnector.CreateInMemoryPair();
                lock (ends)
                {
                    Answer[] script = ends.Count < scripts.Length ? scripts[ends.Count] : [];
                    ends.Add((source, Task.Run(() => destination.ServeAsync(end, script))));
                }

                return Task.FromResult(source);
            }).WaitAsync(EngineHarness.Timeout);
        }
        finally
        {
            foreach ((IMigrationConnection source, Task served) in ends)
            {
                await source.DisposeAsync();
                await served.WaitAsync(EngineHarness.Timeout);
            }
        }

        Check(report, h.Paused, destination, log.Entries);
    }

    private static void Check(MigrationReport report, bool paused, Destination d, Logged[] logs)
    {
        string what = $"{report.Status} ({report.Reason}); destination: {string.Join(", ", d.Trace)}";
        Assert.IsNull(d.SourceViolation, $"the source broke the protocol: {d.SourceViolation}; {what}");
        if (!paused)
        {
            // Resumed (or never paused): only where the destination cannot run the VM, by what it was sent and said.
            Assert.IsTrue(!d.CommitReceived || d.ReleasedAfterCommit, $"the source runs its VM after the destination got a Commit and never said it released the VM: {what}");
            Assert.AreNotEqual(MigrationStatus.Completed, report.Status, $"completed, but the source runs: {what}");
        }
        else
        {
            Assert.IsTrue(report.Status == MigrationStatus.Completed || report.OutcomeUnknown, $"the source is paused, but the report neither completed nor says the outcome is unknown: {what}");
        }

        if (report.Status == MigrationStatus.Completed)
        {
            Assert.IsTrue(d.CommitReceived && d.SaidStarted, $"completed without a Commit that the destination said it started: {what}");
        }
        else
        {
            Assert.IsFalse(string.IsNullOrWhiteSpace(report.Reason), $"a {report.Status} report gives no reason");
        }

        BugChecks.AssertNoBugs(logs.Select(l => l.Exception).Append(report.Error), "the engine");
    }

    private static Said SaidOf(DestinationSessionState state) =>
        state == DestinationSessionState.Started ? Said.Started : state == DestinationSessionState.Discarded ? Said.Released : Said.Nothing;

    private static string Describe(Answer[][] scripts) =>
        string.Join(" | ", scripts.Select(s => string.Join(" ", s.Select(a => a.Kind == AnswerKind.Honest ? "." : $"{a.Kind}({a.Value})"))));

    private enum AnswerKind
    {
        Honest,
        Silent,
        Close,
        CloseInsideAFrame,
        Reset,
        Error,
        RoundAck,
        HelloAck,
        Ready,
        Ack,
        Status,
        SourceFrame,
        Twice,
        Late,
        Garbage,
    }

    /// <summary>What an answer tells the source about the VM.</summary>
    private enum Said
    {
        Nothing,
        Started,
        Released,
    }

    /// <summary>How the destination answers one request (Hello, Resume, Query, RoundEnd, Complete, Commit).</summary>
    private sealed record Answer(AnswerKind Kind, int Value = 0);

    /// <summary>
    /// One destination across the engine's connections. Its session state follows the protocol
    /// (the VM starts on a Commit once ready, a Resume drops the switchover); only its answers
    /// misbehave, as each connection's script says.
    /// </summary>
    private sealed class Destination
    {
        private readonly Lock _gate = new();
        private Guid _session;
        private bool _ready;
        private bool _started;
        private int _helloAckVersion;
        private bool _discarded;

        public List<string> Trace { get; } = [];

        /// <summary>A Commit (frame or query) arrived: from then on the VM may run here.</summary>
        public bool CommitReceived { get; private set; }

        /// <summary>An Ack, or a Status of Started, was sent.</summary>
        public bool SaidStarted { get; private set; }

        /// <summary>After a Commit arrived, an Error or a Status of Discarded was sent: the source may resume.</summary>
        public bool ReleasedAfterCommit { get; private set; }

        /// <summary>What the source sent that the protocol forbids, if anything.</summary>
        public string? SourceViolation { get; private set; }

        public async Task ServeAsync(IMigrationConnection end, Answer[] script)
        {
            var reader = new PageStreamReader(end.Input);
            var writer = new PageStreamWriter(end.Output);
            var handler = new RecordingHandler();
            int seen = 0;
            int next = 0;
            try
            {
                while (await reader.ReadAsync(handler))
                {
                    while (seen < handler.Frames.Count)
                    {
                        ReceivedFrame frame = handler.Frames[seen++];
                        if (frame is PagesRun or ZeroRun or EncodedPageFrame or DeviceStateFrame or DigestsFrame)
                        {
                            continue;
                        }

                        if (frame is DoneFrame)
                        {
                            // The source's word that the Ack arrived: it needs version 3 and a sent Ack.
                            lock (_gate)
                            {
                                SourceViolation ??= _helloAckVersion < 3 ? $"Done after a HelloAck of version {_helloAckVersion}" : SaidStarted ? null : "Done before any Ack";
                            }

                            return;
                        }

                        Answer answer = next < script.Length ? script[next++] : new Answer(AnswerKind.Honest);
                        if (!await AnswerAsync(end, writer, frame, answer))
                        {
                            return;
                        }
                    }
                }
            }
            catch (MigrationProtocolException ex) when (!ex.StreamCut)
            {
                SourceViolation = ex.Message;
            }
            catch (Exception ex) when (ex is IOException or MigrationProtocolException or InvalidOperationException or OperationCanceledException)
            {
                // The source let go of the link, or broke it.
            }
            finally
            {
                writer.Dispose();
                await end.DisposeAsync();
            }
        }

        /// <summary>Answers <paramref name="frame"/>; false when this end is done with the connection.</summary>
        private async Task<bool> AnswerAsync(IMigrationConnection end, PageStreamWriter writer, ReceivedFrame frame, Answer answer)
        {
            (Action<PageStreamWriter>? honest, Said said, bool hangUp) = Honest(frame);
            lock (_gate)
            {
                Trace.Add($"{frame.GetType().Name.Replace("Frame", string.Empty, StringComparison.Ordinal)}→{answer.Kind}");
            }

            switch (answer.Kind)
            {
                case AnswerKind.Honest:
                    return await SendAsync(writer, honest, said) && !hangUp;
                case AnswerKind.Twice:
                    return await SendAsync(writer, honest + honest, said) && !hangUp;
                case AnswerKind.Silent:
                    return true;
                case AnswerKind.Late:
                    // Around the source's response timeout (150 ms): the answer may come after it gave up.
                    await Task.Delay(answer.Value);
                    return await SendAsync(writer, honest, said) && !hangUp;
                case AnswerKind.Garbage:
                    await end.Output.WriteAsync(TransportTestSupport.Frame((byte)answer.Value, new byte[answer.Value % 17]));
                    return true;
                case AnswerKind.Close:
                    await end.Output.CompleteAsync();
                    return true;
                case AnswerKind.CloseInsideAFrame:
                    await end.Output.WriteAsync(TransportTestSupport.Frame(FrameType.RoundAck, new byte[4]).AsMemory(0, 6));
                    await end.Output.CompleteAsync();
                    return true;
                case AnswerKind.Reset:
                    var reset = new IOException("the destination reset the link");
                    await end.Output.CompleteAsync(reset);
                    await end.Input.CompleteAsync(reset);
                    return false;
                case AnswerKind.Error:
                    await SendAsync(writer, w => w.AppendError(new MigrationError((MigrationErrorCode)answer.Value, "a scripted error")), Said.Released);
                    return false;
                case AnswerKind.RoundAck:
                    return await SendAsync(writer, w => w.AppendRoundAck(answer.Value));
                case AnswerKind.HelloAck:
                    lock (_gate)
                    {
                        _helloAckVersion = answer.Value;
                    }

                    return await SendAsync(writer, w => w.AppendHelloAck(new HelloAck((ushort)answer.Value, TimeSpan.Zero)));
                case AnswerKind.Ready:
                    return await SendAsync(writer, w => w.AppendReady(new DestinationReady(TimeSpan.Zero)));
                case AnswerKind.Ack:
                    return await SendAsync(writer, w => w.AppendAck(new CompletionAck(TimeSpan.Zero)), Said.Started);
                case AnswerKind.Status:
                    await SendAsync(writer, w => w.AppendStatus(new SessionStatus((DestinationSessionState)answer.Value, "a scripted status")), SaidOf((DestinationSessionState)answer.Value));
                    return false;
                default:
                    return await SendAsync(writer, w => w.AppendCommit());
            }
        }

        /// <summary>What a destination that keeps the protocol sends for <paramref name="frame"/>, and whether it then hangs up.</summary>
        private (Action<PageStreamWriter>? Answer, Said Said, bool HangUp) Honest(ReceivedFrame frame)
        {
            lock (_gate)
            {
                switch (frame)
                {
                    case HelloFrame hello when !_started:
                        (_session, _ready, _discarded, _helloAckVersion) = (hello.Hello.SessionId, false, false, MigrationProtocol.Version);
                        return (w => w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero)), Said.Nothing, false);
                    case ResumeFrame resume when resume.Resume.SessionId == _session && !_started && !_discarded:
                        (_ready, _helloAckVersion) = (false, MigrationProtocol.Version);
                        return (w => w.AppendHelloAck(new HelloAck(MigrationProtocol.Version, TimeSpan.Zero)), Said.Nothing, false);
                    case ResumeFrame:
                        return (w => w.AppendError(new MigrationError(MigrationErrorCode.SessionUnavailable, "no such session here")), Said.Released, true);
                    case QueryFrame query:
                        DestinationSessionState state = Query(query.Query);
                        return (w => w.AppendStatus(new SessionStatus(state, "the honest state")), SaidOf(state), true);
                    case RoundEndFrame end:
                        _ready = false;
                        return (w => w.AppendRoundAck(end.RoundEnd.Round), Said.Nothing, false);
                    case CompleteFrame:
                        _ready = true;
                        return (w => w.AppendReady(new DestinationReady(TimeSpan.Zero)), Said.Nothing, false);
                    case CommitFrame:
                        CommitReceived = true;
                        _started |= _ready;
                        return _started
                            ? (w => w.AppendAck(new CompletionAck(TimeSpan.Zero)), Said.Started, false)
                            : (w => w.AppendError(new MigrationError(MigrationErrorCode.ProtocolViolation, "Commit before Ready")), Said.Released, true);
                    case ErrorFrame:
                        _discarded |= !_started;
                        return (null, Said.Nothing, true);
                    default:
                        // A second Hello while the VM runs here, or a frame only a destination sends.
                        return (w => w.AppendError(new MigrationError(MigrationErrorCode.DestinationFailure, "refused")), Said.Released, true);
                }
            }
        }

        private DestinationSessionState Query(SessionQuery query)
        {
            if (query.Action == SessionQueryAction.Commit)
            {
                CommitReceived = true;
            }

            DestinationSessionState state = query.SessionId != _session ? DestinationSessionState.Unknown
                : _started ? DestinationSessionState.Started
                : _discarded ? DestinationSessionState.Discarded
                : _ready ? DestinationSessionState.Ready
                : DestinationSessionState.Receiving;
            if (query.Action == SessionQueryAction.Commit && state == DestinationSessionState.Ready)
            {
                (_started, state) = (true, DestinationSessionState.Started);
            }
            else if (query.Action == SessionQueryAction.Abort && state is DestinationSessionState.Receiving or DestinationSessionState.Ready)
            {
                (_discarded, state) = (true, DestinationSessionState.Discarded);
            }

            return state;
        }

        private async Task<bool> SendAsync(PageStreamWriter writer, Action<PageStreamWriter>? frames, Said said = Said.Nothing)
        {
            if (frames is null)
            {
                return true;
            }

            // Noted before the flush: once written, the source may act on it.
            lock (_gate)
            {
                SaidStarted |= said == Said.Started;
                ReleasedAfterCommit |= CommitReceived && said == Said.Released;
            }

            frames(writer);
            try
            {
                await writer.FlushAsync();
                return true;
            }
            catch (Exception ex) when (ex is IOException or InvalidOperationException or OperationCanceledException)
            {
                return false;
            }
        }
    }
}
