using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary><c>migratekit receive</c>'s checks of its options, run as a process.</summary>
[TestClass]
public sealed class ReceiveCommandTests
{
    [TestMethod]
    public void NegativeVerifyPasses_IsAUsageError_BeforeAnythingListens()
    {
        string folder = Directory.CreateTempSubdirectory("mk-receive-").FullName;
        try
        {
            string socket = Path.Combine(folder, "sock");
            (int exit, string stdout, string stderr) = CliProcess.Run(["receive", "--listen", "unix:" + socket, "--vm", "hostvm", "--verify-passes", "-1"]);

            Assert.AreEqual(2, exit, $"{stdout}\n{stderr}");
            StringAssert.Contains(stderr, "--verify-passes -1: use 0 (no wait) or more.");
            Assert.IsFalse(File.Exists(socket), "nothing listened");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
