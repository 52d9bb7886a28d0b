using System;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Cli;

[TestClass]
public sealed class TlsCommandsTests
{
    [TestMethod]
    public void CertsCreate_WritesACaAndBothSidesThatLoadAsTlsOptions()
    {
        string dir = Path.Combine(Path.GetTempPath(), $"mk-cli-certs-{Guid.NewGuid():N}");
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(["certs", "create", dir]);
            Assert.AreEqual(0, exit, stderr);
            foreach (string name in new[] { "ca", "ca-key", "source", "source-key", "destination", "destination-key" })
            {
                string path = Path.Combine(dir, name + ".pem");
                Assert.IsTrue(File.Exists(path), path);
                StringAssert.Contains(stdout, path);
            }

            MigrationTlsOptions destination = MigrationTlsOptions.FromPemFiles(Path.Combine(dir, "destination.pem"), Path.Combine(dir, "destination-key.pem"), Path.Combine(dir, "ca.pem"));
            destination.Validate();
            Assert.AreEqual("CN=destination", destination.Certificate!.Subject);

            (int again, _, string refused) = CliProcess.Run(["certs", "create", dir]);
            Assert.AreEqual(4, again, "existing files are never overwritten");
            StringAssert.Contains(refused, $"'{Path.Combine(dir, "ca.pem")}' already exists; nothing was written");

            (int empty, _, string unnamed) = CliProcess.Run(["certs", "create", ""]);
            Assert.AreEqual(2, empty, unnamed);
            StringAssert.Contains(unnamed, "DIR is empty");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
