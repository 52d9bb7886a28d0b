using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Tracking;
using MigrateKit.Transport;
using Moq;

namespace MigrateKit.Tests.Migration;

/// <summary>A guest write the scripted tracker performs and reports: the page is filled with <paramref name="Fill"/> (0 = zeroed).</summary>
internal readonly record struct PageWrite(int Region, ulong Page, byte Fill);

/// <summary>
/// A dirty-page tracker that plays a script: before harvest <c>i</c> the "guest" performs the
/// writes the script gives for <c>i</c> (unless the source is paused: then the pages are reported
/// but not written), and the harvest reports exactly those pages.
/// </summary>
internal sealed class ScriptedTracker : IDirtyPageTracker
{
    private readonly GuestMemoryLayout _memory;
    private readonly Func<int, IEnumerable<PageWrite>> _script;
    private readonly Func<bool> _paused;
    private readonly Action<string> _log;

    public ScriptedTracker(GuestMemoryLayout memory, Func<int, IEnumerable<PageWrite>> script, Func<bool> paused, Action<string> log)
    {
        _memory = memory;
        _script = script;
        _paused = paused;
        _log = log;
    }

    /// <summary>Runs before harvest <c>i</c> (to throw or cancel).</summary>
    public Action<int>? BeforeHarvest { get; set; }

    public int Harvests { get; private set; }

    /// <summary>
    /// Makes <see cref="HarvestFinal"/> a read-only walk, as the write-protect tracker's is: logged
    /// as "HarvestFinal", taking <see cref="FinalHarvestTime"/>. It applies and reports the next
    /// harvest's scripted writes without taking them, so that harvest reports them again.
    /// </summary>
    public bool ReadOnlyFinal { get; set; }

    /// <summary>What a read-only final harvest reports it took.</summary>
    public TimeSpan FinalHarvestTime { get; set; } = TimeSpan.FromMilliseconds(0.25);

    public bool FinalHarvestRearms => !ReadOnlyFinal;

    public IReadOnlyList<GuestMemoryRegion> Regions => _memory.Regions;

    public bool IsTracking { get; private set; }

    public void Start()
    {
        _log("Start");
        IsTracking = true;
    }

    public HarvestResult HarvestFinal(IReadOnlyList<DirtyBitmap> into)
    {
        if (!ReadOnlyFinal)
        {
            return Harvest(into);
        }

        HarvestResult result = Take(into, "HarvestFinal", Harvests);
        return result with { Duration = FinalHarvestTime };
    }

    public HarvestResult Harvest(IReadOnlyList<DirtyBitmap> into) => Take(into, "Harvest", Harvests++);

    private HarvestResult Take(IReadOnlyList<DirtyBitmap> into, string name, int index)
    {
        _log(name);
        BeforeHarvest?.Invoke(index);
        bool paused = _paused();
        ulong dirty = 0;
        foreach (PageWrite w in _script(index))
        {
            if (!paused)
            {
                Write(_memory, w, index);
            }

            if (!into[w.Region].Test(w.Page))
            {
                into[w.Region].Set(w.Page);
                dirty++;
            }
        }

        return new HarvestResult(dirty, TimeSpan.FromMilliseconds(1));
    }

    public void Stop()
    {
        _log("Stop");
        IsTracking = false;
    }

    public void Dispose()
    {
    }

    /// <summary>Fills a page with a value and stamps it with the write's version, so every write changes it.</summary>
    public static void Write(GuestMemoryLayout memory, PageWrite w, int version)
    {
        Span<byte> page = memory.Regions[w.Region].GetPage(w.Page);
        if (w.Fill == 0)
        {
            page.Clear();
            return;
        }

        page.Fill(w.Fill);
        BinaryPrimitives.WriteUInt64LittleEndian(page, ((ulong)(version + 1) << 40) | ((ulong)w.Region << 32) | w.Page);
    }
}

/// <summary>The destination VM: its own memory, a resume estimate, and a record of what was done to it.</summary>
internal sealed class TestTarget : IMigrationTarget
{
    public TestTarget(MigrationHello hello, IReadOnlyList<GuestMemoryRegionSpec>? layout = null)
    {
        Hello = hello;
        Memory = new GuestMemoryLayout(layout ?? hello.Regions);
    }

    public MigrationHello Hello { get; }

    public GuestMemoryLayout Memory { get; }

    public TimeSpan ResumeCost { get; set; } = TimeSpan.FromMilliseconds(5);

    public Exception? RestoreFailure { get; set; }

    public byte[]? RestoredState { get; private set; }

    public bool Started { get; private set; }

    public bool Disposed { get; private set; }

    public TimeSpan EstimateResumeCost() => ResumeCost;

    /// <summary>Runs when the device state is restored, before it is kept.</summary>
    public Action? BeforeRestore { get; set; }

    public void RestoreDeviceState(ReadOnlySpan<byte> state)
    {
        BeforeRestore?.Invoke();
        if (RestoreFailure is { } failure)
        {
            throw failure;
        }

        RestoredState = state.ToArray();
    }

    /// <summary>Runs when Start is called, before the VM counts as started (a destination slow to resume blocks here).</summary>
    public Action? BeforeStart { get; set; }

    public void Start()
    {
        BeforeStart?.Invoke();
        Started = true;
    }

    public void Dispose()
    {
        if (!Disposed)
        {
            Disposed = true;
            Memory.Dispose();
        }
    }
}

/// <summary>
/// A fake clock that signals when the engine waits for the destination's final Ack: the first
/// timeout of <paramref name="timeout"/> set on a task (Task.WaitAsync) after the switchover's
/// deadline, the one timeout of that length set on a CancellationTokenSource.
/// </summary>
internal sealed class AckWaitClock(TimeSpan timeout) : FakeTimeProvider
{
    private int _deadlineSet;

    /// <summary>Set once the engine waits for the final Ack.</summary>
    public ManualResetEventSlim WaitingForAck { get; } = new();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        ITimer timer = base.CreateTimer(callback, state, dueTime, period);
        if (dueTime == timeout)
        {
            if (state is CancellationTokenSource)
            {
                Volatile.Write(ref _deadlineSet, 1);
            }
            else if (state is Task && Volatile.Read(ref _deadlineSet) == 1)
            {
                WaitingForAck.Set();
            }
        }

        return timer;
    }
}

/// <summary>Collects progress reports synchronously (Progress&lt;T&gt; would post them).</summary>
internal sealed class ListProgress<T> : IProgress<T>
{
    private readonly List<T> _items = [];

    public IReadOnlyList<T> Items
    {
        get
        {
            lock (_items)
            {
                return _items.ToArray();
            }
        }
    }

    public void Report(T value)
    {
        lock (_items)
        {
            _items.Add(value);
        }
    }
}

/// <summary>
/// A source VM made of a Moq'd <see cref="IMigrationSource"/> over real anonymous memory, a
/// <see cref="ScriptedTracker"/>, and a real <see cref="MigrationReceiver"/> with a
/// <see cref="TestTarget"/> on the other end of an in-memory connection.
/// </summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    public const ulong Page = GuestMemoryLayout.PageSize;

    /// <summary>What the engine counts per page on the wire.</summary>
    public const ulong PageWireBytes = 4096 + 16;

    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public static readonly byte[] CalibrationState = Enumerable.Range(0, 64).Select(i => (byte)i).ToArray();

    public static readonly byte[] FinalState = Enumerable.Range(0, 80).Select(i => (byte)(255 - i)).ToArray();

    /// <summary>Pages that are dirtied before every harvest.</summary>
    public static readonly PageWrite[] Hot = [new(0, 5, 0xA5), new(0, 6, 0xA6), new(1, 3, 0xB3)];

    private readonly List<string> _log = [];
    private readonly List<int> _throttles = [];
    private IMigrationConnection? _sourceEnd;
    private IMigrationConnection? _destinationEnd;
    private int _pauses;
    private int _saves;

    public EngineHarness(Func<int, IEnumerable<PageWrite>> script)
    {
        // Region 0: 64 pages at 0, the first 50 written; region 1: 16 pages at 256 MiB, the first 12 written.
        Memory = new GuestMemoryLayout([new GuestMemoryRegionSpec(0, 64 * Page), new GuestMemoryRegionSpec(0x1000_0000, 16 * Page)]);
        for (ulong p = 0; p < 50; p++)
        {
            ScriptedTracker.Write(Memory, new PageWrite(0, p, (byte)(p + 1)), -1);
        }

        for (ulong p = 0; p < 12; p++)
        {
            ScriptedTracker.Write(Memory, new PageWrite(1, p, (byte)(p + 100)), -1);
        }

        Tracker = new ScriptedTracker(Memory, script, () => Paused, Log);
        Source = new Mock<IMigrationSource>(MockBehavior.Strict);
        Source.SetupGet(s => s.Name).Returns("vm-under-test");
        Source.SetupGet(s => s.Memory).Returns(Memory);
        Source.SetupGet(s => s.VcpuCount).Returns(2);
        Source.SetupGet(s => s.IsPaused).Returns(() => Paused);
        Source.Setup(s => s.Pause()).Returns(() =>
        {
            int n = _pauses++;
            Log("Pause");
            Paused = true;
            OnPause?.Invoke(n);
            return PauseLatency(n);
        });
        Source.Setup(s => s.Resume()).Callback(() =>
        {
            Log("Resume");
            Paused = false;
        });
        Source.Setup(s => s.SaveDeviceState()).Returns(() =>
        {
            int n = _saves++;
            Log("SaveDeviceState");
            return SaveDeviceState(n);
        });
        Source.Setup(s => s.SetThrottlePercent(It.IsAny<int>())).Callback((int percent) =>
        {
            lock (_throttles)
            {
                _throttles.Add(percent);
            }
        });
    }

    /// <summary>The converging script: hot pages every harvest, a warm set once each, then only the hot pages.</summary>
    public static IEnumerable<PageWrite> Converging(int harvest)
    {
        IEnumerable<PageWrite> warm = harvest switch
        {
            0 => Range(0, 10, 40, 0x11),
            1 => Range(0, 40, 64, 0x22).Concat(Range(1, 8, 12, 0x33)).Append(new PageWrite(0, 2, 0)),
            _ => [],
        };
        return Hot.Concat(warm);
    }

    /// <summary>Every page of both regions is rewritten before every harvest: the guest outruns any link.</summary>
    public static IEnumerable<PageWrite> AllDirty(int harvest) =>
        Range(0, 0, 64, (byte)(harvest + 1)).Concat(Range(1, 0, 16, (byte)(harvest + 1)));

    public static IEnumerable<PageWrite> Range(int region, ulong first, ulong end, byte fill)
    {
        for (ulong p = first; p < end; p++)
        {
            yield return new PageWrite(region, p, fill);
        }
    }

    /// <summary>
    /// Options that make the forecast depend on page counts only: 1 MiB/s is far below what an
    /// in-memory pipe measures, and pages go raw (the scripted pages compress to a few bytes;
    /// <see cref="Encoded"/> turns the encodings on).
    /// </summary>
    public static MigrationOptions Options(Func<MigrationOptions, MigrationOptions>? adjust = null)
    {
        var options = new MigrationOptions { MaxDowntime = TimeSpan.FromMilliseconds(100), BandwidthLimit = 1L << 20, AllowThrottling = false, Encodings = PageEncodings.None };
        return adjust is null ? options : adjust(options);
    }

    /// <summary><paramref name="o"/> with <paramref name="encodings"/>: pages go in their cheapest form.</summary>
    public static MigrationOptions Encoded(MigrationOptions o, PageEncodings encodings = PageEncodings.All) => new()
    {
        MaxDowntime = o.MaxDowntime,
        BandwidthLimit = o.BandwidthLimit,
        AllowThrottling = o.AllowThrottling,
        Encodings = encodings,
    };

    /// <summary><paramref name="o"/> with <see cref="MigrationOptions.KeepTrackingOnFailure"/> on: the tracker runs on after a failure.</summary>
    public static MigrationOptions KeepingTracking(MigrationOptions o) => new()
    {
        MaxDowntime = o.MaxDowntime,
        Encodings = o.Encodings,
        BandwidthLimit = o.BandwidthLimit,
        AllowThrottling = o.AllowThrottling,
        KeepTrackingOnFailure = true,
    };

    public GuestMemoryLayout Memory { get; }

    public Mock<IMigrationSource> Source { get; }

    public ScriptedTracker Tracker { get; }

    public PreCopyEngine? Engine { get; private set; }

    public TestTarget? Target { get; private set; }

    public bool Paused { get; private set; }

    public Func<int, TimeSpan> PauseLatency { get; set; } = _ => TimeSpan.Zero;

    public Func<int, byte[]> SaveDeviceState { get; set; } = n => n == 0 ? CalibrationState : FinalState;

    public Action<int>? OnPause { get; set; }

    public Action<TestTarget>? ConfigureTarget { get; set; }

    public Func<MigrationHello, TestTarget>? CreateTarget { get; set; }

    /// <summary>The options the in-memory connection is opened with; null for the defaults.</summary>
    public PageStreamOptions? StreamOptions { get; set; }

    public ILogger<PreCopyEngine>? EngineLogger { get; set; }

    public ILogger<MigrationReceiver>? ReceiverLogger { get; set; }

    public string[] Calls
    {
        get
        {
            lock (_log)
            {
                return _log.ToArray();
            }
        }
    }

    public int[] Throttles
    {
        get
        {
            lock (_throttles)
            {
                return _throttles.ToArray();
            }
        }
    }

    /// <summary>The tracker the engine is given; null for <see cref="Tracker"/>.</summary>
    public IDirtyPageTracker? EngineTracker { get; set; }

    /// <summary>Starts the receiver and the engine; returns both tasks.</summary>
    public (Task<MigrationReport> Migrating, Task<ReceiveResult> Receiving) Start(MigrationOptions options, IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        Engine = new PreCopyEngine(Source.Object, EngineTracker ?? Tracker, options, EngineLogger);
        return StartAgain(progress, cancellationToken);
    }

    /// <summary>Starts another migration of the same engine to a new receiver and target; returns both tasks.</summary>
    public (Task<MigrationReport> Migrating, Task<ReceiveResult> Receiving) StartAgain(IProgress<MigrationProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        PreCopyEngine engine = Engine ?? throw new InvalidOperationException("Start the first migration with Start.");
        _sourceEnd?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        _destinationEnd?.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Target?.Dispose();
        (_sourceEnd, _destinationEnd) = MigrationConnector.CreateInMemoryPair(StreamOptions);
        var receiver = new MigrationReceiver(hello =>
        {
            TestTarget target = CreateTarget?.Invoke(hello) ?? new TestTarget(hello);
            ConfigureTarget?.Invoke(target);
            Target = target;
            return target;
        }, ReceiverLogger);
        IMigrationConnection destination = _destinationEnd;
        Task<ReceiveResult> receiving = Task.Run(() => receiver.ReceiveAsync(destination));
        Task<MigrationReport> migrating = engine.MigrateAsync(_sourceEnd, progress, cancellationToken);
        return (migrating.WaitAsync(Timeout), receiving.WaitAsync(Timeout));
    }

    /// <summary>Asserts that every region of <paramref name="target"/> holds what the same region of <paramref name="source"/> does.</summary>
    public static void AssertSameMemory(GuestMemoryLayout source, GuestMemoryLayout target, string? context = null)
    {
        for (int r = 0; r < source.Regions.Count; r++)
        {
            GuestMemoryRegion s = source.Regions[r];
            Assert.IsTrue(s.GetSpan(0, (int)s.Size).SequenceEqual(target.Regions[r].GetSpan(0, (int)s.Size)), $"region {r} differs{(context is null ? string.Empty : $" ({context})")}");
        }
    }

    /// <summary>Runs a migration to its end on both sides.</summary>
    public async Task<(MigrationReport Report, ReceiveResult Received)> RunAsync(MigrationOptions options, IProgress<MigrationProgress>? progress = null)
    {
        (Task<MigrationReport> migrating, Task<ReceiveResult> receiving) = Start(options, progress);
        MigrationReport report = await migrating;
        ReceiveResult received = await receiving;
        return (report, received);
    }

    /// <summary>The pages set in each region's pending bitmap, as (region, page).</summary>
    public (int Region, ulong Page)[] PendingPages()
    {
        var pages = new List<(int, ulong)>();
        IReadOnlyList<DirtyBitmap> pending = Engine!.PendingPages;
        for (int r = 0; r < pending.Count; r++)
        {
            foreach (ulong p in pending[r].EnumerateSetPages())
            {
                pages.Add((r, p));
            }
        }

        return pages.ToArray();
    }

    public async ValueTask DisposeAsync()
    {
        if (_sourceEnd is not null)
        {
            await _sourceEnd.DisposeAsync();
        }

        if (_destinationEnd is not null)
        {
            await _destinationEnd.DisposeAsync();
        }

        Target?.Dispose();
        Memory.Dispose();
    }

    private void Log(string call)
    {
        lock (_log)
        {
            _log.Add(call);
        }
    }
}
