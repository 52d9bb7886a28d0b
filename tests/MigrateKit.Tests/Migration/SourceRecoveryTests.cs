using System;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Memory;
using MigrateKit.Migration;
using Moq;

namespace MigrateKit.Tests.Migration;

[TestClass]
public sealed class SourceRecoveryTests : IDisposable
{
    private readonly GuestMemoryLayout _memory = new([new GuestMemoryRegionSpec(0, 16 * GuestMemoryLayout.PageSize)]);
    private readonly Mock<IMigrationSource> _source = new(MockBehavior.Strict);
    private readonly RegionSet _regions;
    private readonly SourceRecovery _recovery;

    public SourceRecoveryTests()
    {
        _source.Setup(s => s.Pause()).Returns(TimeSpan.FromMilliseconds(2));
        _source.Setup(s => s.Resume());
        _source.Setup(s => s.SetThrottlePercent(It.IsAny<int>()));
        _regions = new RegionSet(_memory.Regions, new MigrationOptions());
        _recovery = new SourceRecovery(_source.Object, _regions);
    }

    public void Dispose() => _memory.Dispose();

    /// <summary>Pages 3 and 4 in flight, page 9 pending.</summary>
    private void SendTwoPages()
    {
        _regions.Regions[0].Pending.Set(3);
        _regions.Regions[0].Pending.Set(4);
        _regions.PlanRound();
        _regions.Regions[0].Pending.Set(9);
    }

    [TestMethod]
    public void PauseAndThrottle_AreRemembered_TheStrongestThrottleToo()
    {
        Assert.AreEqual(TimeSpan.FromMilliseconds(2), _recovery.Pause());
        Assert.IsTrue(_recovery.Paused);
        _recovery.Resume();
        Assert.IsFalse(_recovery.Paused);

        _recovery.Throttle(30);
        _recovery.Throttle(20);

        Assert.AreEqual(20, _recovery.ThrottlePercent);
        Assert.AreEqual(30, _recovery.MaxThrottlePercent);
        _source.Verify(s => s.SetThrottlePercent(30), Times.Once());
        _source.Verify(s => s.SetThrottlePercent(20), Times.Once());
    }

    [TestMethod]
    public void LeaveRunning_ResumesAPausedSource_LiftsTheThrottle_AndReturnsTheUndeliveredPages()
    {
        SendTwoPages();
        _recovery.Throttle(40);
        _recovery.Pause();

        _recovery.LeaveRunning();

        Assert.IsFalse(_recovery.Paused);
        Assert.AreEqual(0, _recovery.ThrottlePercent);
        Assert.AreEqual(40, _recovery.MaxThrottlePercent);
        _source.Verify(s => s.Resume(), Times.Once());
        _source.Verify(s => s.SetThrottlePercent(0), Times.Once());
        Assert.AreEqual(3UL, _regions.PendingPages);
    }

    [TestMethod]
    public void LeaveRunning_TouchesNothingTheEngineDidNotDo()
    {
        _recovery.LeaveRunning();

        _source.Verify(s => s.Resume(), Times.Never());
        _source.Verify(s => s.SetThrottlePercent(It.IsAny<int>()), Times.Never());
    }

    [TestMethod]
    public void LeaveRunning_ResumesASourceWhosePauseFailed()
    {
        _source.Setup(s => s.Pause()).Throws(new InvalidOperationException("half paused"));
        Assert.ThrowsExactly<InvalidOperationException>(() => _recovery.Pause());

        _recovery.LeaveRunning();

        _source.Verify(s => s.Resume(), Times.Once());
    }

    [TestMethod]
    public void LeaveAfterFailure_ResumesTheSource_WhenTheDestinationCannotRunTheVm()
    {
        SendTwoPages();
        _recovery.Pause();

        Assert.IsTrue(_recovery.LeaveAfterFailure(destinationMayRunTheVm: false));

        Assert.IsFalse(_recovery.Paused);
        Assert.AreEqual(3UL, _regions.PendingPages);
    }

    [TestMethod]
    public void LeaveAfterFailure_KeepsTheSourcePausedButUnthrottled_WhenTheDestinationMayRunTheVm()
    {
        SendTwoPages();
        _recovery.Throttle(25);
        _recovery.Pause();

        Assert.IsFalse(_recovery.LeaveAfterFailure(destinationMayRunTheVm: true));

        Assert.IsTrue(_recovery.Paused);
        _source.Verify(s => s.Resume(), Times.Never());
        Assert.AreEqual(0, _recovery.ThrottlePercent);
        Assert.AreEqual(3UL, _regions.PendingPages, "the pages in flight are pending all the same");
    }

    [TestMethod]
    public void UnknownOutcome_SaysTheSourceStaysPausedAndHowToAskTheDestination()
    {
        var session = Guid.Parse("0123456789abcdef0123456789abcdef");
        string message = SourceRecovery.UnknownOutcome("the migration was cancelled", session, "tcp:10.0.0.2:4000");

        Assert.StartsWith("the migration was cancelled after Commit was sent", message);
        Assert.Contains("stays paused", message);
        Assert.Contains("migratekit recover --to tcp:10.0.0.2:4000 --session 0123456789abcdef0123456789abcdef", message);
    }

    [TestMethod]
    public void UnknownOutcome_OfAFailureThatSaysCommitWasSent_DoesNotSayItTwice()
    {
        string message = SourceRecovery.UnknownOutcome("Commit was sent but its answer was lost (the link broke), and the destination could not be asked: refused", Guid.NewGuid(), null);

        Assert.StartsWith("Commit was sent but its answer was lost (the link broke), and the destination could not be asked: refused. The source is paused", message);
        Assert.DoesNotContain("after Commit was sent", message);
    }
}
