using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>Pacer: holds a guest-writing thread for the pace limit and the throttle, on a fake clock.</summary>
[TestClass]
public sealed class PacerTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly PaceControl _control = new();
    private readonly List<TimeSpan> _holds = [];

    [TestMethod]
    public void PageWritten_WithoutALimitOrThrottle_NeverHolds()
    {
        Pacer pacer = NewPacer();
        for (int i = 0; i < 1000; i++)
        {
            _time.Advance(TimeSpan.FromMicroseconds(1));
            pacer.PageWritten();
        }

        Assert.IsEmpty(_holds);
    }

    [TestMethod]
    public void PageWritten_AtAPaceLimit_HoldsEachPageUntilItIsDue()
    {
        _control.SetPaceLimit(500);
        Pacer pacer = NewPacer();
        DateTimeOffset start = _time.GetUtcNow();
        for (int i = 0; i < 10; i++)
        {
            pacer.PageWritten();
        }

        Assert.HasCount(10, _holds);
        Assert.AreEqual(20, (_time.GetUtcNow() - start).TotalMilliseconds, 0.01, "10 pages at 500 pages/s take 20 ms");
    }

    [TestMethod]
    public void Held_IsTheTimeTheThreadWasHeld_SoItsRunShareFollows()
    {
        // 100 pages/s, each written in 2 ms: the thread runs a fifth of the time and is held the rest.
        _control.SetPaceLimit(100);
        Pacer pacer = NewPacer();
        DateTimeOffset start = _time.GetUtcNow();
        for (int i = 0; i < 50; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(2));
            pacer.PageWritten();
        }

        double wall = (_time.GetUtcNow() - start).TotalSeconds;
        Assert.AreEqual(_holds.Sum(h => h.TotalSeconds), pacer.Held.TotalSeconds, 1e-9);
        Assert.AreEqual(0.2, 1 - (pacer.Held.TotalSeconds / wall), 0.01);
    }

    [TestMethod]
    public void PageWritten_SharesTheLimitAmongTheWriters()
    {
        _control.SetPaceLimit(1000);
        Pacer pacer = NewPacer();
        pacer.PageWritten(writers: 4);
        Assert.AreEqual(4, _holds.Single().TotalMilliseconds, 0.01, "a quarter of 1000 pages/s is one page per 4 ms");
    }

    [TestMethod]
    public void PageWritten_FarBehindSchedule_StartsANewWindowInsteadOfBursting()
    {
        _control.SetPaceLimit(500);
        Pacer pacer = NewPacer();
        pacer.PageWritten();
        _time.Advance(TimeSpan.FromSeconds(1));
        pacer.PageWritten();
        Assert.HasCount(1, _holds, "the late page is not held, and the window starts again");
        pacer.PageWritten();
        Assert.HasCount(2, _holds);
        Assert.AreEqual(2, _holds[1].TotalMilliseconds, 0.01, "the new window paces from its own start");
    }

    [TestMethod]
    [DataRow(50, 10.0)]
    [DataRow(75, 30.0)]
    public void PageWritten_WithAThrottle_HoldsInProportionToTheTimeRun(int percent, double heldMs)
    {
        _control.SetThrottlePercent(percent);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromMilliseconds(10));
        pacer.PageWritten();
        Assert.AreEqual(heldMs, _holds.Single().TotalMilliseconds, 0.01);
    }

    [TestMethod]
    public void PageWritten_HoldsAtMost100Milliseconds_AndOwesTheRest()
    {
        _control.SetThrottlePercent(90);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromMilliseconds(20));
        pacer.PageWritten();
        pacer.PageWritten();
        Assert.AreEqual(100, _holds[0].TotalMilliseconds, 0.01);
        Assert.AreEqual(80, _holds[1].TotalMilliseconds, 0.01, "180 ms owed for 20 ms run, 100 ms of it held at the first page");
    }

    [TestMethod]
    public void PageWritten_UnderAMillisecondOwed_CarriesItToTheNextPage()
    {
        _control.SetThrottlePercent(50);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromMilliseconds(0.6));
        pacer.PageWritten();
        Assert.IsEmpty(_holds);
        _time.Advance(TimeSpan.FromMilliseconds(0.6));
        pacer.PageWritten();
        Assert.AreEqual(1.2, _holds.Single().TotalMilliseconds, 0.01);
    }

    [TestMethod]
    public void PageWritten_AfterAHoldCutShort_StillOwesTheRest()
    {
        _control.SetThrottlePercent(50);
        Pacer pacer = Started(hold: t => _time.Advance(t / 4));
        _time.Advance(TimeSpan.FromMilliseconds(40));
        pacer.PageWritten();
        pacer.PageWritten();
        Assert.AreEqual(40, _holds[0].TotalMilliseconds, 0.01);
        Assert.AreEqual(30, _holds[1].TotalMilliseconds, 0.01, "a pause ended the first hold after 10 ms");
    }

    [TestMethod]
    public void Restart_DoesNotCountTheTimeParkedAsRunTime()
    {
        _control.SetThrottlePercent(50);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromSeconds(5));
        pacer.Restart();
        pacer.PageWritten();
        Assert.IsEmpty(_holds);
    }

    [TestMethod]
    public void ASettingChange_ForgetsWhatWasOwed()
    {
        _control.SetThrottlePercent(90);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromMilliseconds(20));
        pacer.PageWritten();
        _control.SetThrottlePercent(50);
        pacer.PageWritten();
        Assert.HasCount(1, _holds, "the 80 ms still owed at 90 % are not held at 50 %");
    }

    [TestMethod]
    [DataRow(50, 10.0)]
    [DataRow(75, 30.0)]
    public void TimesliceEnded_WithAThrottle_HoldsAsQemuDoes_PctOverOneMinusPctOfTheSlice(int percent, double heldMs)
    {
        _control.SetThrottlePercent(percent);
        Pacer pacer = Started();
        _time.Advance(TimeSpan.FromMilliseconds(10));
        pacer.TimesliceEnded();
        Assert.AreEqual(heldMs, _holds.Single().TotalMilliseconds, 0.01);
    }

    [TestMethod]
    public void TimesliceEnded_RunsHalfTheTimeAtFiftyPercent_OverManySlices()
    {
        _control.SetThrottlePercent(50);
        Pacer pacer = Started();
        DateTimeOffset start = _time.GetUtcNow();
        for (int i = 0; i < 100; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(10));
            pacer.TimesliceEnded();
        }

        Assert.AreEqual(2000, (_time.GetUtcNow() - start).TotalMilliseconds, 0.1, "1 s run and 1 s held");
    }

    [TestMethod]
    public void TimesliceEnded_IgnoresThePaceLimit_WhichNeedsPageCounts()
    {
        _control.SetPaceLimit(1);
        Pacer pacer = NewPacer();
        for (int i = 0; i < 100; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(10));
            pacer.TimesliceEnded();
        }

        Assert.IsEmpty(_holds);
    }

    /// <summary>A pacer past its first page, which starts its schedule: only the time run after it is owed.</summary>
    private Pacer Started(Action<TimeSpan>? hold = null)
    {
        Pacer pacer = NewPacer(hold);
        _time.Advance(TimeSpan.FromSeconds(1));
        pacer.PageWritten();
        Assert.IsEmpty(_holds, "the first page starts the schedule");
        return pacer;
    }

    private Pacer NewPacer(Action<TimeSpan>? hold = null) => new(_control, _time, t =>
    {
        _holds.Add(t);
        (hold ?? _time.Advance)(t);
    });
}
