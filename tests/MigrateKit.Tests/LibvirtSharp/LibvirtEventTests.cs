using System;
using System.Collections.Concurrent;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;
using LibvirtSharp;
using LibvirtSharp.Interop;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>Domain events from the test driver, dispatched by LibvirtEventLoop.</summary>
[TestClass]
[TestCategory("Libvirt")]
public sealed class LibvirtEventTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    public void LifecycleEvent_ArrivesForCreateAndDestroy()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);
        var events = new BlockingCollection<DomainLifecycleEventArgs>();
        object? sender = null;
        connection.DomainLifecycle += (s, e) =>
        {
            if (e.DomainName == name)
            {
                sender = s;
                events.Add(e);
            }
        };

        using LibvirtDomain domain = connection.CreateDomain(xml);
        domain.Destroy();

        DomainLifecycleEventArgs started = Take(events);
        DomainLifecycleEventArgs stopped = Take(events);
        Assert.AreEqual(DomainEventType.Started, started.Event);
        Assert.AreEqual(0, started.Detail, "VIR_DOMAIN_EVENT_STARTED_BOOTED");
        Assert.AreEqual(domain.Uuid, started.Uuid);
        Assert.AreEqual(DomainEventType.Stopped, stopped.Event);
        Assert.AreEqual(1, stopped.Detail, "VIR_DOMAIN_EVENT_STOPPED_DESTROYED");
        Assert.AreSame(connection, sender);
    }

    [TestMethod]
    public async Task WatchEvents_StreamsLifecycleOfTheNamedDomainOnly()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);
        string otherXml = LibvirtRequirement.DomainXml(out _);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(TestContext.CancellationToken);
        cancellation.CancelAfter(Timeout);
        await using IAsyncEnumerator<DomainEvent> watcher = connection.WatchEventsAsync(name, cancellation.Token).GetAsyncEnumerator(cancellation.Token);

        // The first MoveNextAsync subscribes before it waits.
        ValueTask<bool> first = watcher.MoveNextAsync();
        using (LibvirtDomain other = connection.CreateDomain(otherXml))
        {
            other.Destroy();
        }

        using LibvirtDomain domain = connection.DefineDomain(xml);
        domain.Create();
        domain.Suspend();
        domain.Resume();
        domain.Destroy();
        domain.Undefine();

        var seen = new List<DomainEventType>();
        Assert.IsTrue(await first);
        do
        {
            var lifecycle = (DomainLifecycleEvent)watcher.Current;
            Assert.AreEqual(name, lifecycle.DomainName);
            Assert.AreEqual(domain.Uuid, lifecycle.Uuid);
            seen.Add(lifecycle.Event);
        }
        while (seen.Count < 6 && await watcher.MoveNextAsync());

        CollectionAssert.AreEqual(
            new[] { DomainEventType.Defined, DomainEventType.Started, DomainEventType.Suspended, DomainEventType.Resumed, DomainEventType.Stopped, DomainEventType.Undefined },
            seen);
    }

    [TestMethod]
    public async Task WatchEvents_EndsWhenTheConnectionIsDisposed()
    {
        LibvirtConnection connection = LibvirtRequirement.OpenTest();
        await using IAsyncEnumerator<DomainEvent> watcher = connection.WatchEventsAsync(cancellationToken: TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);
        ValueTask<bool> next = watcher.MoveNextAsync();

        connection.Dispose();

        Assert.IsFalse(await next.AsTask().WaitAsync(Timeout, TestContext.CancellationToken));
        Assert.ThrowsExactly<ObjectDisposedException>(() => connection.DomainLifecycle += (_, _) => { });
    }

    [TestMethod]
    public async Task WatchEvents_IsCancelledByItsToken()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        using var cancellation = new CancellationTokenSource();
        await using IAsyncEnumerator<DomainEvent> watcher = connection.WatchEventsAsync(cancellationToken: cancellation.Token).GetAsyncEnumerator();
        ValueTask<bool> next = watcher.MoveNextAsync();

        await cancellation.CancelAsync();

        await Assert.ThrowsAsync<OperationCanceledException>(async () => await next);
    }

    [TestMethod]
    public async Task LostRemoteConnection_FailsWatchers_WithAConnectionFault()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        await using IAsyncEnumerator<DomainEvent> watcher = connection.WatchEventsAsync(cancellationToken: TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);
        ValueTask<bool> next = watcher.MoveNextAsync();

        // What libvirt's close callback reports when a remote daemon goes away (VIR_CONNECT_CLOSE_REASON_EOF).
        ((IConnectionEventSink)connection).OnClosed(1);

        LibvirtException ex = await Assert.ThrowsAsync<LibvirtException>(async () => await next);
        Assert.IsTrue(ex.IsConnectionFault);
        StringAssert.Contains(ex.Message, "test:///default");
        StringAssert.Contains(ex.LibvirtMessage, "end of file");

        // A watcher started after the closure fails at once instead of waiting forever.
        await using IAsyncEnumerator<DomainEvent> late = connection.WatchEventsAsync(cancellationToken: TestContext.CancellationToken).GetAsyncEnumerator(TestContext.CancellationToken);
        Assert.IsTrue((await Assert.ThrowsAsync<LibvirtException>(async () => await late.MoveNextAsync())).IsConnectionFault);
    }

    [TestMethod]
    public void ThrowingHandler_IsReported_AndOtherHandlersStillRun()
    {
        using LibvirtConnection connection = LibvirtRequirement.OpenTest();
        string xml = LibvirtRequirement.DomainXml(out string name);
        var reported = new BlockingCollection<Exception>();
        var delivered = new BlockingCollection<DomainEventType>();
        EventHandler<UnhandledExceptionEventArgs> onUnhandled = (_, e) =>
        {
            if (e.ExceptionObject is InvalidOperationException { Message: var message } ex && message == name)
            {
                reported.Add(ex);
            }
        };
        LibvirtEventLoop.UnhandledException += onUnhandled;
        try
        {
            connection.DomainLifecycle += (_, e) =>
            {
                if (e.DomainName == name)
                {
                    throw new InvalidOperationException(name);
                }
            };
            connection.DomainLifecycle += (_, e) =>
            {
                if (e.DomainName == name)
                {
                    delivered.Add(e.Event);
                }
            };

            using LibvirtDomain domain = connection.CreateDomain(xml);
            domain.Destroy();

            Assert.AreEqual(DomainEventType.Started, Take(delivered));
            Assert.AreEqual(DomainEventType.Stopped, Take(delivered));
            Assert.IsInstanceOfType<InvalidOperationException>(Take(reported));
        }
        finally
        {
            LibvirtEventLoop.UnhandledException -= onUnhandled;
        }
    }

    [TestMethod]
    public void Dispose_DeregistersCallbacks_AndLibvirtReleasesTheirHandles()
    {
        LibvirtRequirement.Require();
        int before = EventApi.LiveCallbackHandles;
        LibvirtConnection connection = LibvirtRequirement.OpenTest();
        connection.DomainLifecycle += (_, _) => { };
        connection.MigrationIteration += (_, _) => { };
        connection.JobCompleted += (_, _) => { };
        connection.DomainLifecycle += (_, _) => { };
        Assert.AreEqual(before + 3, EventApi.LiveCallbackHandles, "one registration per event kind");

        connection.Dispose();

        // libvirt runs the free callbacks once no dispatch is using them (possibly later, on the loop thread).
        Assert.IsTrue(SpinWait.SpinUntil(() => EventApi.LiveCallbackHandles <= before, Timeout), "free callbacks did not run");
        Assert.IsTrue(connection.Handle.IsClosed);
    }

    [TestMethod]
    public void EnsureStarted_IsIdempotentAcrossThreads()
    {
        LibvirtRequirement.Require();

        Parallel.For(0, 16, _ => LibvirtEventLoop.EnsureStarted());

        Assert.IsTrue(LibvirtEventLoop.IsStarted);
    }

    private static T Take<T>(BlockingCollection<T> items)
    {
        Assert.IsTrue(items.TryTake(out T? item, Timeout), "no event within " + Timeout);
        return item!;
    }
}
