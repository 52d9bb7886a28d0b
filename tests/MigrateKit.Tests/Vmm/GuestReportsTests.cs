using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>GuestReports: decoding what a guest program writes to its status and pace ports.</summary>
[TestClass]
public sealed class GuestReportsTests
{
    [TestMethod]
    public void Status_WithoutTheFailureFlag_IsThePassNumber()
    {
        var reports = new GuestReports();
        reports.Status(1);
        reports.Status(2);
        Assert.AreEqual(2u, reports.Passes);
        Assert.AreEqual(0, reports.Failures);
        Assert.AreEqual(-1, reports.FirstFailedPage);
    }

    [TestMethod]
    public void Status_WithTheFailureFlag_CountsFailuresAndKeepsTheFirstPage()
    {
        var reports = new GuestReports();
        reports.Status(GuestPorts.FailureFlag | 17);
        reports.Status(GuestPorts.FailureFlag | 3);
        Assert.AreEqual(2, reports.Failures);
        Assert.AreEqual(17, reports.FirstFailedPage);
        Assert.AreEqual(0u, reports.Passes, "a failure is not a pass");
    }

    [TestMethod]
    public void ToStatus_CarriesTheCountsAndTheVcpuState()
    {
        var reports = new GuestReports();
        reports.Status(5);
        reports.PageWritten();
        reports.PageWritten();
        Assert.AreEqual(new VcpuStatus(3, 5, 0, -1, 2, true, "vCPU 3: halted"), reports.ToStatus(3, halted: true, fault: "vCPU 3: halted"));
    }

    [TestMethod]
    public void Serial_CountsPassesAndFailuresAsTheDwordReportsWould()
    {
        var reports = new GuestReports();
        reports.Serial(GuestSerialLog.Parse("00000001\n80000005\n"));
        reports.Serial(GuestSerialLog.Parse("80000009\n"));
        reports.Serial(GuestSerialLog.Parse("00000002\n"));
        Assert.AreEqual(2u, reports.Passes);
        Assert.AreEqual(2L, reports.Failures);
        Assert.AreEqual(5L, reports.FirstFailedPage);
    }
}
