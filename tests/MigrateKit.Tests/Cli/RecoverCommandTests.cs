using System.IO;
using System.Threading.Tasks;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.Migration;
using MigrateKit.Tests.Transport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Cli;

/// <summary><c>migratekit recover</c> against destinations that give no Status, run as a process.</summary>
[TestClass]
public sealed class RecoverCommandTests
{
    private const string Session = "0123456789abcdef0123456789abcdef";

    [TestMethod]
    [DataRow(false, "closed the connection without answering the query.")]
    [DataRow(true, "refused the query (SessionUnavailable): queries need a listening receiver")]
    public async Task Recover_ToADestinationThatGivesNoStatus_ExitsWith4_SayingWhatItDid(bool refuses, string said)
    {
        string folder = Directory.CreateTempSubdirectory("mk-recover-").FullName;
        string address = "unix:" + Path.Combine(folder, "sock");
        try
        {
            await using MigrationListener listener = MigrationListener.Listen(address);
            Task answering = Task.Run(async () =>
            {
                await using IMigrationConnection connection = await listener.AcceptAsync();
                if (refuses)
                {
                    using var writer = new PageStreamWriter(connection.Output);
                    await writer.TrySendErrorAsync(new MigrationError(MigrationErrorCode.SessionUnavailable, "queries need a listening receiver"));
                }
            });

            (int exit, string stdout, string stderr) = await Task.Run(() => CliProcess.Run(["recover", "--to", address, "--session", Session]));
            await answering.WaitAsync(EngineHarness.Timeout);

            Assert.AreEqual(4, exit, stderr);
            Assert.AreEqual(string.Empty, stdout);
            StringAssert.StartsWith(stderr, "migratekit recover: The destination at unix:");
            StringAssert.Contains(stderr, said);
            Assert.DoesNotContain("Migration failed", stderr, "a query is not a migration");
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }
}
