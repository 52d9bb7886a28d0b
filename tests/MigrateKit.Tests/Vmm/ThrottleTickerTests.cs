using System;
using Microsoft.Extensions.Time.Testing;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>ThrottleTicker: kicks the vCPUs every timeslice while a throttle is set, on a fake clock.</summary>
[TestClass]
public sealed class ThrottleTickerTests
{
    private readonly FakeTimeProvider _time = new();
    private readonly PaceControl _control = new();
    private int _kicks;

    [TestMethod]
    public void WithoutAThrottle_NeverKicks()
    {
        using ThrottleTicker ticker = NewTicker();
        ticker.Update();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(0, _kicks);
        Assert.IsFalse(ticker.Ticking);
    }

    [TestMethod]
    public void WithAThrottle_KicksEveryTenMilliseconds()
    {
        using ThrottleTicker ticker = NewTicker();
        _control.SetThrottlePercent(50);
        ticker.Update();
        _time.Advance(TimeSpan.FromMilliseconds(9));
        Assert.AreEqual(0, _kicks);
        _time.Advance(TimeSpan.FromMilliseconds(1));
        Assert.AreEqual(1, _kicks);
        for (int i = 0; i < 99; i++)
        {
            _time.Advance(TimeSpan.FromMilliseconds(10));
        }

        Assert.AreEqual(100, _kicks, "one kick per 10 ms timeslice");
    }

    [TestMethod]
    public void ThrottleRemoved_StopsTheKicks()
    {
        using ThrottleTicker ticker = NewTicker();
        _control.SetThrottlePercent(50);
        ticker.Update();
        _time.Advance(TimeSpan.FromMilliseconds(50));
        _control.SetThrottlePercent(0);
        ticker.Update();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(5, _kicks);
        Assert.IsFalse(ticker.Ticking);
    }

    [TestMethod]
    public void AfterDispose_NeverKicksAgain()
    {
        ThrottleTicker ticker = NewTicker();
        _control.SetThrottlePercent(20);
        ticker.Update();
        ticker.Dispose();
        ticker.Update();
        _time.Advance(TimeSpan.FromSeconds(1));
        Assert.AreEqual(0, _kicks);
    }

    private ThrottleTicker NewTicker() => new(_control, () => _kicks++, _time);
}
