using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary><c>migratekit doctor</c> run as a process against this machine: its JSON shape, what it says of /dev/kvm, and its exit code.</summary>
[TestClass]
public sealed class DoctorCommandTests
{
    [TestMethod]
    public void Json_IsOneObject_WithEveryCheckNamedAndAFixForEachFailure_AndReportsKvmAsItIs()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["doctor", "--json", "--for", "hostvm"]);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement root = doc.RootElement;
        Assert.AreEqual("hostvm", root.GetProperty("for").GetString());
        JsonElement[] checks = [.. root.GetProperty("checks").EnumerateArray()];
        string[] names = [.. checks.Select(c => c.GetProperty("name").GetString()!)];
        CollectionAssert.AreEquivalent(new[] { "kvm-device", "kvm-capabilities", "kernel-write-protect", "libvirt-library", "qemu", "nofile-limit", "memlock-limit" }, names);
        foreach (JsonElement c in checks)
        {
            Assert.IsFalse(string.IsNullOrWhiteSpace(c.GetProperty("detail").GetString()), c.ToString());
            bool ok = c.GetProperty("ok").GetBoolean();
            Assert.AreEqual(ok, c.GetProperty("fix").ValueKind == JsonValueKind.Null, $"a fix exactly when a check fails: {c}");
        }

        // Required for hostvm: the write-protect check alone, and the exit code follows it.
        JsonElement wp = checks.Single(c => c.GetProperty("name").GetString() == "kernel-write-protect");
        Assert.IsTrue(wp.GetProperty("required").GetBoolean());
        Assert.AreEqual(wp.GetProperty("ok").GetBoolean(), root.GetProperty("ok").GetBoolean());
        Assert.AreEqual(root.GetProperty("ok").GetBoolean() ? 0 : 1, exit, stderr);

        JsonElement kvm = checks.Single(c => c.GetProperty("name").GetString() == "kvm-device");
        Assert.AreEqual(KvmOpensReadWrite(), kvm.GetProperty("ok").GetBoolean(), kvm.ToString());
    }

    [TestMethod]
    public void ALibvirtUriThatDoesNotAnswer_FailsTheLibvirtUse_WithExitCode1_AndAFix()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["doctor", "--for", "libvirt", "--connect", "nosuchdriver:///nowhere"]);
        Assert.AreEqual(1, exit, stderr);
        string line = stdout.Split('\n').Single(l => l.Contains("libvirt-connect", StringComparison.Ordinal));
        StringAssert.StartsWith(line, "FAIL libvirt-connect: ");
        StringAssert.Contains(line, "; fix: ");
        StringAssert.Contains(stdout, "not ready for libvirt");
    }

    [TestMethod]
    public void AnUnknownUse_IsAUsageError()
    {
        (int exit, string stdout, _) = CliProcess.Run(["doctor", "--for", "qemu"]);
        Assert.AreEqual(2, exit);
        Assert.AreEqual("", stdout);
    }

    private static bool KvmOpensReadWrite()
    {
        try
        {
            using var kvm = new FileStream("/dev/kvm", FileMode.Open, FileAccess.ReadWrite);
            return true;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
