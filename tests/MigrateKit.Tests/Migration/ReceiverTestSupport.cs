using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Migration;

/// <summary>
/// A hand-driven source for receiver tests: it writes frames on its end of a connection and reads
/// the destination's answers one by one. Its VM is one region of 16 random pages.
/// </summary>
internal sealed class ScriptedSource : IAsyncDisposable
{
    public const ulong Pages = 16;

    private readonly PageStreamReader _reader;
    private readonly RecordingHandler _replies = new();
    private int _seen;
    private ushort _version;

    public ScriptedSource(IMigrationConnection connection, ScriptedVm vm)
    {
        Connection = connection;
        Vm = vm;
        Writer = new PageStreamWriter(connection.Output);
        _reader = new PageStreamReader(connection.Input);
    }

    public IMigrationConnection Connection { get; }

    public ScriptedVm Vm { get; }

    public PageStreamWriter Writer { get; }

    public static async Task<ScriptedSource> ConnectAsync(string address, ScriptedVm vm) =>
        new(await MigrationConnector.ConnectAsync(address).WaitAsync(EngineHarness.Timeout), vm);

    public async Task SendAsync(Action<PageStreamWriter> frames)
    {
        frames(Writer);
        await Writer.FlushAsync().AsTask().WaitAsync(EngineHarness.Timeout);
    }

    /// <summary>The next answer from the destination; null at the end of its stream.</summary>
    public async Task<ReceivedFrame?> NextAsync()
    {
        while (_seen == _replies.Frames.Count)
        {
            if (!await _reader.ReadAsync(_replies).AsTask().WaitAsync(EngineHarness.Timeout))
            {
                return null;
            }
        }

        ReceivedFrame next = _replies.Frames[_seen++];
        if (next is HelloAckFrame helloAck)
        {
            _version = helloAck.Ack.Version;
        }

        return next;
    }

    /// <summary>The next answer, which must be a <typeparamref name="T"/>.</summary>
    public async Task<T> ExpectAsync<T>()
        where T : ReceivedFrame
    {
        ReceivedFrame? next = await NextAsync();
        T frame = next as T ?? throw new AssertFailedException($"expected {typeof(T).Name}, got {next?.ToString() ?? "the end of the stream"}");
        if (frame is AckFrame)
        {
            // As a source does: Done tells a version 3 destination the Ack arrived; closing its side tells version 2.
            if (_version >= 3)
            {
                Writer.AppendDone();
                await Writer.FlushAsync().AsTask().WaitAsync(EngineHarness.Timeout);
            }

            await Connection.Output.CompleteAsync();
        }

        return frame;
    }

    /// <summary>Reads until the destination closes its side, or the connection breaks.</summary>
    public async Task<List<ReceivedFrame>> RestAsync()
    {
        var rest = new List<ReceivedFrame>();
        try
        {
            while (await NextAsync() is { } frame)
            {
                rest.Add(frame);
            }
        }
        catch (Exception ex) when (ex is IOException or MigrationProtocolException)
        {
            // A closed socket may end in a reset rather than a clean end of stream.
        }

        return rest;
    }

    /// <summary>Hello, then pages [first, end) and RoundEnd(round), and waits for the RoundAck.</summary>
    public async Task HelloAndRoundAsync(ulong first, ulong end, int round = 0)
    {
        await SendAsync(w => w.AppendHello(Vm.Hello));
        await ExpectAsync<HelloAckFrame>();
        await RoundAsync(first, end, round);
    }

    public async Task RoundAsync(ulong first, ulong end, int round)
    {
        await SendAsync(w =>
        {
            w.AppendPages(0, Vm.Region, [new PageRun(first, end - first)]);
            w.AppendRoundEnd(new RoundEnd(round, end - first, 0));
        });
        Assert.AreEqual(new RoundAckFrame(round), await ExpectAsync<RoundAckFrame>());
    }

    /// <summary>Hello, every page in round 0, the switchover, and the destination's Ready.</summary>
    public async Task ReadyAsync()
    {
        await HelloAndRoundAsync(0, Pages);
        await SwitchoverAsync();
        await ExpectAsync<ReadyFrame>();
    }

    /// <summary>DeviceState, Digests (of the source's memory unless <paramref name="digest"/> is given) and Complete.</summary>
    public Task SwitchoverAsync(ulong? digest = null) => SendAsync(w =>
    {
        w.AppendDeviceState(ScriptedVm.State);
        w.AppendDigests([new RegionDigest(0, digest ?? RegionDigestAccumulator.Compute(Vm.Region))]);
        w.AppendComplete();
    });

    public async ValueTask DisposeAsync()
    {
        Writer.Dispose();
        await Connection.DisposeAsync();
    }
}

/// <summary>The source VM of a <see cref="ScriptedSource"/>: its Hello (with a session id) and memory.</summary>
internal sealed class ScriptedVm : IDisposable
{
    public static readonly byte[] State = [1, 2, 3, 4, 5];

    /// <param name="seed">Seeds the memory's contents.</param>
    /// <param name="version">The protocol version its Hello names (and the oldest it accepts, when lower than the library's).</param>
    public ScriptedVm(int seed = 1, ushort version = MigrationProtocol.Version)
    {
        Memory = TransportTestSupport.RandomMemory(ScriptedSource.Pages, seed);
        Hello = new MigrationHello(version, [new GuestMemoryRegionSpec(0, ScriptedSource.Pages * GuestMemoryLayout.PageSize)], 1, $"vm-{seed}")
        {
            MinimumVersion = Math.Min(version, MigrationProtocol.MinimumVersion),
        };
    }

    public GuestMemoryLayout Memory { get; }

    public GuestMemoryRegion Region => Memory.Regions[0];

    public MigrationHello Hello { get; }

    public Guid SessionId => Hello.SessionId;

    /// <summary>Whether <paramref name="target"/> holds exactly this VM's memory.</summary>
    public bool SameMemory(TestTarget target) =>
        Region.GetSpan(0, (int)(ScriptedSource.Pages * GuestMemoryLayout.PageSize)).SequenceEqual(target.Memory.Regions[0].GetSpan(0, (int)(ScriptedSource.Pages * GuestMemoryLayout.PageSize)));

    public void Dispose() => Memory.Dispose();
}

/// <summary>Every target a receiver built, in order.</summary>
internal sealed class BuiltTargets
{
    private readonly List<TestTarget> _all = [];

    public TestTarget this[int index]
    {
        get
        {
            lock (_all)
            {
                return _all[index];
            }
        }
    }

    public int Count
    {
        get
        {
            lock (_all)
            {
                return _all.Count;
            }
        }
    }

    public TestTarget Create(MigrationHello hello)
    {
        var target = new TestTarget(hello);
        lock (_all)
        {
            _all.Add(target);
        }

        return target;
    }

    public void DisposeAll()
    {
        lock (_all)
        {
            _all.ForEach(t => t.Dispose());
        }
    }

    public IEnumerable<TestTarget> Started()
    {
        lock (_all)
        {
            return _all.Where(t => t.Started).ToArray();
        }
    }
}
