using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary><c>plan</c>'s usage errors: each names the option, before any VM starts.</summary>
[TestClass]
public sealed class PlanCommandTests
{
    [TestMethod]
    [DataRow("--bandwidth", "unlimited", "cannot model an unlimited link")]
    [DataRow("--deadline", "0s", "--deadline")]
    [DataRow("--deadline", "soon", "--deadline")]
    [DataRow("--observe", "5x", "--observe")]
    [DataRow("--max-downtime", "0ms", "--max-downtime")]
    [DataRow("--workload", "dance", "--workload")]
    public void BadValue_IsAUsageErrorNamingTheOption(string option, string value, string named)
    {
        string[] args = option == "--bandwidth" ? ["plan", "--vm", "hostvm", option, value] : ["plan", "--vm", "hostvm", "--bandwidth", "100MiB/s", option, value];

        (int exit, string stdout, string stderr) = CliProcess.Run(args);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, named);
        Assert.AreEqual("", stdout);
    }
}
