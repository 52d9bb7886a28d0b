using System;
using System.Buffers;
using System.Collections.Generic;
using System.Diagnostics;
using System.IO;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using MigrateKit.Diagnostics;
using MigrateKit.Memory;
using MigrateKit.Transport;

namespace MigrateKit.Migration;

/// <summary>
/// The destination side: builds a VM from the source's Hello, writes every page it receives into
/// the VM's memory, checks the digests at the switchover, restores the device state and starts
/// the VM. A digest mismatch means the VM is never started and the source is told.
/// </summary>
/// <remarks>
/// <para>
/// The destination decides what it builds: a Hello beyond its <see cref="MigrationReceiverOptions"/>
/// is answered with an Error frame (code DestinationFailure) naming the limit, and the result
/// carries a <see cref="MigrationLimitException"/>, before the target factory runs. The kind of VM
/// is the factory's choice; the Hello's source name is only a label for logs.
/// </para>
/// <para>
/// Diagnostics: the logger gets Information at the Hello, the switchover and the end, Debug per
/// round and Warning when the source gives up or receiving fails; each migration received is a
/// <c>migratekit.receive</c> span of the <c>MigrateKit</c> activity source.
/// </para>
/// </remarks>
public sealed class MigrationReceiver
{
    private readonly Func<MigrationHello, IMigrationTarget> _createTarget;
    private readonly MigrationReceiverOptions _options;
    private readonly ILogger _logger;

    /// <summary>Creates a receiver with the default <see cref="MigrationReceiverOptions"/> (at most 64 GiB, 64 regions, 64 vCPUs).</summary>
    /// <param name="createTarget">Builds the destination VM for a Hello (same regions and vCPU count).</param>
    /// <param name="logger">Receives the receiver's log lines; <see langword="null"/> for none.</param>
    public MigrationReceiver(Func<MigrationHello, IMigrationTarget> createTarget, ILogger<MigrationReceiver>? logger = null)
        : this(createTarget, new MigrationReceiverOptions(), logger)
    {
    }

    /// <summary>Creates a receiver that accepts only what <paramref name="options"/> allow.</summary>
    /// <param name="createTarget">
    /// Builds the destination VM for a Hello within the limits (same regions and vCPU count). It
    /// chooses the kind of VM; the Hello's source name is the peer's claim, not a configuration.
    /// </param>
    /// <param name="options">The largest VM accepted and, optionally, the exact shape expected.</param>
    /// <param name="logger">Receives the receiver's log lines; <see langword="null"/> for none.</param>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public MigrationReceiver(Func<MigrationHello, IMigrationTarget> createTarget, MigrationReceiverOptions options, ILogger<MigrationReceiver>? logger = null)
    {
        ArgumentNullException.ThrowIfNull(createTarget);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _createTarget = createTarget;
        _options = options;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Receives one migration over <paramref name="connection"/>.</summary>
    public async Task<ReceiveResult> ReceiveAsync(IMigrationConnection connection, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var session = new Session(this, connection);
        return await session.RunAsync(cancellationToken).ConfigureAwait(false);
    }

    private sealed class Session : IPageStreamHandler
    {
        private readonly MigrationReceiver _owner;
        private readonly IMigrationConnection _connection;
        private readonly PageStreamReader _reader;
        private readonly PageStreamWriter _writer;
        private IMigrationTarget? _target;
        private GuestMemoryRegion[] _regions = [];
        private RegionDigestAccumulator[] _digests = [];
        private bool _populate = true;
        private DirtyBitmap[] _written = [];
        private byte[]? _deviceState;
        private RegionDigest[]? _sourceDigests;
        private bool _complete;
        private bool _replyPending;
        private MigrationError? _sourceError;
        private int _rounds;
        private ulong _pages;
        private ulong _zeroPages;
        private long _completeAt;
        private string _sourceName = "(before Hello)";
        private Activity? _activity;

        // Restarted before every read and reply: fires when the peer says nothing for too long.
        private readonly CancellationTokenSource _silence;

        internal Session(MigrationReceiver owner, IMigrationConnection connection)
        {
            _owner = owner;
            _connection = connection;
            _reader = new PageStreamReader(connection.Input, connection.Options);
            _writer = new PageStreamWriter(connection.Output, connection.Options);
            _silence = new CancellationTokenSource(Timeout.InfiniteTimeSpan, owner._options.TimeProvider);
        }

        internal async Task<ReceiveResult> RunAsync(CancellationToken ct)
        {
            using Activity? activity = MigrateKitTelemetry.ActivitySource.StartActivity(MigrateKitTelemetry.Spans.Receive);
            using CancellationTokenSource silence = _silence;
            _activity = activity;
            ReceiveResult result;
            try
            {
                result = await ReceiveCoreAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex)
            {
                // Cancellation (or a failure while reporting a failure): the receive ends without a result.
                if (ex is OperationCanceledException)
                {
                    MigrationLog.ReceiveCancelled(_owner._logger, _sourceName);
                }
                else
                {
                    MigrationLog.ReceiveFailed(_owner._logger, ex);
                }

                Tag(activity);
                MigrateKitTelemetry.SetOutcome(activity, ex is OperationCanceledException ? "cancelled" : "failed", ex.Message, ex is OperationCanceledException ? null : ex);
                throw;
            }

            Tag(activity);
            if (result.ResumeDuration is { } resume)
            {
                activity?.SetTag(MigrateKitTelemetry.Tags.ResumeMs, resume.TotalMilliseconds);
            }

            MigrateKitTelemetry.SetOutcome(activity, MigrationTelemetry.StatusName(result.Status), result.Reason,
                result.Status == MigrationStatus.Completed ? null : result.Error);
            return result;
        }

        private void Tag(Activity? activity)
        {
            if (activity is null)
            {
                return;
            }

            activity.SetTag(MigrateKitTelemetry.Tags.Rounds, _rounds);
            activity.SetTag(MigrateKitTelemetry.Tags.PagesSent, (long)_pages);
            activity.SetTag(MigrateKitTelemetry.Tags.ZeroPages, (long)_zeroPages);
            activity.SetTag(MigrateKitTelemetry.Tags.BytesReceived, _reader.BytesRead);
        }

        private async Task<ReceiveResult> ReceiveCoreAsync(CancellationToken ct)
        {
            using CancellationTokenSource watched = CancellationTokenSource.CreateLinkedTokenSource(ct, _silence.Token);
            try
            {
                while (!_complete && _sourceError is null)
                {
                    Watch();
                    if (!await WithinSilenceLimitAsync(_reader.ReadAsync(this, watched.Token), ct).ConfigureAwait(false))
                    {
                        throw new IOException(_target is null ? "The source closed the connection before its Hello." : "The source closed the connection before the switchover completed.");
                    }

                    if (_replyPending)
                    {
                        _replyPending = false;
                        Watch();
                        await WithinSilenceLimitAsync(_writer.FlushAsync(watched.Token), ct).ConfigureAwait(false);
                    }
                }

                if (_sourceError is { } error)
                {
                    MigrationLog.SourceGaveUp(_owner._logger, _sourceName, error.Message);
                    _target?.Dispose();
                    return Result(MigrationStatus.Aborted, $"the source gave up: {error.Message}", null);
                }

                return await FinishAsync(ct).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                MigrationLog.ReceiveFailed(_owner._logger, ex);
                _target?.Dispose();
                await TellSourceAsync(ex is MigrationProtocolException ? MigrationErrorCode.ProtocolViolation : MigrationErrorCode.DestinationFailure, ex.Message).ConfigureAwait(false);
                await HangUpAsync().ConfigureAwait(false);
                return Result(MigrationStatus.Failed, ex.Message, ex);
            }
            catch
            {
                _target?.Dispose();
                throw;
            }
        }

        // Restarts the silence timer for the next step: the handshake timeout until the Hello, the idle timeout after it.
        private void Watch() => _silence.CancelAfter(_target is null ? _owner._options.HandshakeTimeout : _owner._options.IdleTimeout);

        /// <summary>
        /// Runs one read or reply under the handshake timeout (before the Hello) or the idle
        /// timeout (after it), restarted by <see cref="Watch"/> just before <paramref name="step"/> began.
        /// </summary>
        private async ValueTask<T> WithinSilenceLimitAsync<T>(ValueTask<T> step, CancellationToken ct)
        {
            try
            {
                return await step.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_silence.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw SilenceTimeout();
            }
        }

        private async ValueTask WithinSilenceLimitAsync(ValueTask step, CancellationToken ct)
        {
            try
            {
                await step.ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_silence.IsCancellationRequested && !ct.IsCancellationRequested)
            {
                throw SilenceTimeout();
            }
        }

        private TimeoutException SilenceTimeout() => new(_target is null
            ? $"No Hello arrived within {_owner._options.HandshakeTimeout.TotalSeconds:0.###} s of the connection."
            : $"The source sent nothing for {_owner._options.IdleTimeout.TotalSeconds:0.###} s.");

        private async Task<ReceiveResult> FinishAsync(CancellationToken ct)
        {
            IMigrationTarget target = _target ?? throw new MigrationProtocolException("Complete", "type", "Complete arrived before Hello.");
            if (_sourceDigests is null || _deviceState is null)
            {
                throw new MigrationProtocolException("Complete", "type", "Complete arrived before the device state and digests.");
            }

            if (_sourceDigests.Length != _digests.Length || _sourceDigests.Select(d => d.Region).Distinct().Count() != _digests.Length)
            {
                throw new MigrationProtocolException("Digests", "count", $"Expected one digest for each of the {_digests.Length} regions, got {_sourceDigests.Length}.");
            }

            foreach (RegionDigest d in _sourceDigests)
            {
                if (d.Region < 0 || d.Region >= _digests.Length)
                {
                    throw new MigrationProtocolException("Digests", "region", $"Region {d.Region} does not exist (the VM has {_digests.Length}).");
                }

                if (_digests[d.Region].Value != d.Digest)
                {
                    // Never run a VM on memory that differs from the source's.
                    string message = $"region {d.Region}: received memory digests to 0x{_digests[d.Region].Value:x16}, the source sent 0x{d.Digest:x16}";
                    MigrationLog.DigestMismatch(_owner._logger, _sourceName, message);
                    target.Dispose();
                    await TellSourceAsync(MigrationErrorCode.DigestMismatch, message).ConfigureAwait(false);
                    await HangUpAsync().ConfigureAwait(false);
                    return Result(MigrationStatus.Failed, "digest mismatch: " + message, new InvalidDataException(message));
                }
            }

            target.RestoreDeviceState(_deviceState);
            target.Start();
            TimeSpan resume = Stopwatch.GetElapsedTime(_completeAt);
            _writer.AppendAck(new CompletionAck(resume));
            await _writer.FlushAsync(ct).ConfigureAwait(false);
            MigrationLog.Received(_owner._logger, _sourceName, _pages, resume.TotalMilliseconds);
            return new ReceiveResult
            {
                Status = MigrationStatus.Completed,
                Target = target,
                Rounds = _rounds,
                PagesReceived = _pages,
                ZeroPagesReceived = _zeroPages,
                BytesReceived = _reader.BytesRead,
                ResumeDuration = resume,
            };
        }

        /// <summary>Ends both directions so a source still sending sees the stream close.</summary>
        private async Task HangUpAsync()
        {
            await _connection.Input.CompleteAsync().ConfigureAwait(false);
            await _connection.Output.CompleteAsync().ConfigureAwait(false);
        }

        private ReceiveResult Result(MigrationStatus status, string reason, Exception? error) => new()
        {
            Status = status,
            Reason = reason,
            Error = error,
            Rounds = _rounds,
            PagesReceived = _pages,
            ZeroPagesReceived = _zeroPages,
            BytesReceived = _reader.BytesRead,
        };

        private async Task TellSourceAsync(MigrationErrorCode code, string message) =>
            await _writer.TrySendErrorAsync(new MigrationError(code, message)).ConfigureAwait(false);

        public void OnHello(MigrationHello hello)
        {
            CheckOpen("Hello");
            if (_target is not null)
            {
                throw new MigrationProtocolException("Hello", "type", "A second Hello arrived.");
            }

            _sourceName = hello.SourceName;
            ulong memoryBytes = MigrationReceiverOptions.TotalMemory(hello);
            MigrationLog.ReceiveStarting(_owner._logger, hello.SourceName, memoryBytes, hello.Regions.Count, hello.VcpuCount, hello.Version);
            if (_activity is not null)
            {
                _activity.SetTag(MigrateKitTelemetry.Tags.VmName, hello.SourceName);
                _activity.SetTag(MigrateKitTelemetry.Tags.MemoryBytes, (long)memoryBytes);
            }

            // Before the target is built or any per-page state allocated: the peer's Hello is a claim.
            _owner._options.Check(hello);
            _target = _owner._createTarget(hello);
            IReadOnlyList<GuestMemoryRegion> regions = _target.Memory.Regions;
            if (regions.Count != hello.Regions.Count || regions.Where((r, i) => r.GuestPhysicalAddress != hello.Regions[i].GuestPhysicalAddress || r.Size != hello.Regions[i].Size).Any())
            {
                throw new InvalidOperationException("The destination VM's memory layout does not match the source's Hello.");
            }

            _regions = regions.ToArray();
            _digests = _regions.Select(r => new RegionDigestAccumulator(r.PageCount)).ToArray();
            _written = _regions.Select(r => new DirtyBitmap(r.PageCount)).ToArray();
            for (int i = 0; i < _regions.Length; i++)
            {
                // Memory the target already holds (a reused VM, loaded firmware) is cleared by
                // zero runs like pages this session wrote; fresh memory has nothing populated.
                _regions[i].MarkPopulatedPages(_written[i]);
            }

            StreamRehearsal.Run(_regions[0], []);
            JitWarmup.Prepare(typeof(MigrationReceiver));
            _writer.AppendHelloAck(new HelloAck(MigrationProtocol.Version, _target.EstimateResumeCost()));
            _replyPending = true;
        }

        public void OnPages(int region, ulong firstPage, int count, ReadOnlySequence<byte> data)
        {
            CheckOpen("Pages");
            GuestMemoryRegion memory = CheckRange("Pages", region, firstPage, (ulong)count);
            if (_populate && !_written[region].Test(firstPage))
            {
                // First data for these pages: back them in one call rather than one fault per page.
                _populate = memory.TryPopulate(firstPage, (ulong)count);
            }

            Span<byte> target = memory.GetSpan(firstPage * GuestMemoryLayout.PageSize, count * (int)GuestMemoryLayout.PageSize);
            data.CopyTo(target);
            RegionDigestAccumulator digest = _digests[region];
            for (int i = 0; i < count; i++)
            {
                digest.Update(firstPage + (ulong)i, target.Slice(i * (int)GuestMemoryLayout.PageSize, (int)GuestMemoryLayout.PageSize));
            }

            _written[region].SetRange(firstPage, (ulong)count);
            _pages += (ulong)count;
        }

        public void OnZeroPages(int region, ulong firstPage, ulong count)
        {
            CheckOpen("ZeroPages");
            GuestMemoryRegion memory = CheckRange("ZeroPages", region, firstPage, count);
            DirtyBitmap written = _written[region];
            RegionDigestAccumulator digest = _digests[region];

            // Fresh memory is already zero: only pages written earlier are cleared (and touched).
            // Found word by word, so a small frame announcing a huge run costs its words, not its pages.
            foreach (PageRun run in written.EnumerateRunsIn(firstPage, count))
            {
                for (ulong p = run.FirstPage; p < run.End; p++)
                {
                    memory.GetPage(p).Clear();
                    digest.UpdateZero(p);
                }
            }

            written.ClearRange(firstPage, count);

            _zeroPages += count;
        }

        public void OnRoundEnd(RoundEnd roundEnd)
        {
            // Everything before it has been written into guest memory: tell the source, so its
            // bandwidth covers the whole path and no backlog hides in the next forecast.
            CheckOpen("RoundEnd");
            _rounds = roundEnd.Round + 1;
            _writer.AppendRoundAck(roundEnd.Round);
            _replyPending = true;
            MigrationLog.RoundReceived(_owner._logger, roundEnd.Round, _sourceName, _pages, _zeroPages, _reader.BytesRead);
        }

        public void OnDeviceState(ReadOnlySequence<byte> state)
        {
            CheckOpen("DeviceState");
            _deviceState = state.ToArray();
        }

        public void OnDigests(IReadOnlyList<RegionDigest> digests)
        {
            CheckOpen("Digests");
            _sourceDigests = digests.ToArray();
        }

        public void OnComplete()
        {
            CheckOpen("Complete");
            _completeAt = Stopwatch.GetTimestamp();
            _complete = true;
            MigrationLog.SwitchoverReceived(_owner._logger, _sourceName, _rounds);
        }

        public void OnError(MigrationError error)
        {
            CheckOpen("Error");
            _sourceError = error;
        }

        public void OnHelloAck(HelloAck ack) => throw NotFromASource("HelloAck");

        public void OnRoundAck(int round) => throw NotFromASource("RoundAck");

        public void OnAck(CompletionAck ack) => throw NotFromASource("Ack");

        private static MigrationProtocolException NotFromASource(string frame) =>
            new(frame, "type", $"A source does not send {frame} frames.");

        /// <summary>
        /// Complete and Error are a source's last words: a frame behind them (in the same read,
        /// as the receiver reads no further) is a violation, not something to act on.
        /// </summary>
        private void CheckOpen(string frame)
        {
            if (_sourceError is not null || _complete)
            {
                throw new MigrationProtocolException(frame, "type", $"{frame} arrived after {(_sourceError is not null ? "Error" : "Complete")}.");
            }
        }

        private GuestMemoryRegion CheckRange(string frame, int region, ulong firstPage, ulong count)
        {
            if (_target is null)
            {
                throw new MigrationProtocolException(frame, "type", $"{frame} arrived before Hello.");
            }

            if (region < 0 || region >= _regions.Length)
            {
                throw new MigrationProtocolException(frame, "region", $"Region {region} does not exist (the VM has {_regions.Length}).");
            }

            GuestMemoryRegion memory = _regions[region];
            if (firstPage > memory.PageCount || count > memory.PageCount - firstPage)
            {
                throw new MigrationProtocolException(frame, "firstPage", $"Pages [{firstPage}, +{count}) lie outside region {region} of {memory.PageCount} pages.");
            }

            return memory;
        }
    }
}
