using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary><c>migratekit completion bash|zsh</c> and the hidden <c>complete</c> command its scripts call, run as a process.</summary>
[TestClass]
public sealed class CompletionCommandTests
{
    [TestMethod]
    [DataRow("bash", "complete -o default -F _migratekit_complete migratekit")]
    [DataRow("zsh", "compdef _migratekit migratekit")]
    public void Completion_PrintsAScriptThatRegistersForMigratekit(string shell, string registration)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["completion", shell]);
        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(stdout, registration);
        StringAssert.Contains(stdout, "migratekit complete --position");
    }

    [TestMethod]
    [DataRow("migratekit do", "doctor")]
    [DataRow("migratekit demo --work", "--workload")]
    [DataRow("migratekit doctor --for ", "hostvm")]
    public void Complete_ListsWhatCanFollowTheTypedLine(string line, string expected)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["complete", "--", line]);
        Assert.AreEqual(0, exit, stderr);
        CollectionAssert.Contains(stdout.Split('\n'), expected, stdout);
    }

    [TestMethod]
    [DataRow("-1")]
    [DataRow("9999")]
    public void Complete_AtACursorOutsideTheLine_CompletesAtItsNearerEnd(string position)
    {
        // It printed a stack trace (exit 1) into the shell's completion.
        (int exit, _, string stderr) = CliProcess.Run(["complete", "--position", position, "--", "migratekit do"]);
        Assert.AreEqual(0, exit, stderr);
        Assert.AreEqual("", stderr);
    }

    [TestMethod]
    public void Completion_ForAnotherShell_IsAUsageError()
    {
        (int exit, string stdout, _) = CliProcess.Run(["completion", "fish"]);
        Assert.AreEqual(2, exit);
        Assert.AreEqual("", stdout);
    }
}
