using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>Options that can only fail are refused before anything runs, naming the option, with exit code 2.</summary>
[TestClass]
public sealed class UpFrontChecksTests
{
    [TestMethod]
    [DataRow("bench forecast|--from", "[1, 2]", "not a bench forecast result as --out saves it (it does not fit at line 1).")]
    [DataRow("bench plan|--from", "{\"runs\": [{\"status\": \"bananas\"}]}", "not a bench plan result as --out saves it (it does not fit at $.runs[0], line 1).")]
    [DataRow("bench vs-qemu|--summarize", "", "not a bench vs-qemu result as --out saves it (it does not fit at line 1).")]
    public void ASavedResultOfAnotherShape_IsRefusedNamingTheOption_NotACSharpType(string args, string json, string message)
    {
        // It said "The JSON value could not be converted to MigrateKit.Cli.ForecastJson. Path: $ | LineNumber: 0 …".
        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, json);
            string[] words = args.Split('|');
            (int exit, string stdout, string stderr) = CliProcess.Run([.. words[0].Split(' '), words[1], file]);
            Assert.AreEqual(2, exit, $"{stdout}\n{stderr}");
            StringAssert.Contains(stderr, $"{words[1]} {file}: {message}");
            Assert.IsFalse(stderr.Contains("MigrateKit.Cli", System.StringComparison.Ordinal), stderr);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestMethod]
    [DataRow("libvirt plan|", "DOMAIN is empty: name the running domain to plan.")]
    [DataRow("libvirt plan|web1|--deadline|0s", "--deadline 0s: the deadline must be positive.")]
    [DataRow("libvirt plan|web1|--bandwidth|1KiB/s", "--bandwidth 1KiB/s: a plan needs at least 4KiB/s.")]
    [DataRow("libvirt plan|web1|--max-downtime|0ms", "--max-downtime must be positive (got 0 ms).")]
    [DataRow("libvirt plan|web1|--max-downtime|3000s", "--max-downtime 3000s: QEMU takes a limit of at most 2000 s.")]
    [DataRow("plan|--vm|hostvm|--memory|6,4MiB|--bandwidth|10MiB/s", "--memory: '6,4MiB' is not a size: write a decimal point, not a comma")]
    [DataRow("plan|--vm|hostvm|--bandwidth|10MiB/s|--report|plan.html", "--report plan.html: a plan is saved as FILE.png (its chart, with FILE.json next to it) or as JSON under any other name, not as a page.")]
    [DataRow("bench forecast|--vm|host|--runs|1|--out|/nonexistent-mk/x.json", "--out /nonexistent-mk/x.json: the folder /nonexistent-mk does not exist.")]
    [DataRow("bench plan|--vm|host|--out|/nonexistent-mk/x.json", "--out /nonexistent-mk/x.json: the folder /nonexistent-mk does not exist.")]
    [DataRow("report|", "REPORT is empty: name a report saved as JSON, e.g. run.json.")]
    [DataRow("bench stream|--encodings|auto", "--encodings 'auto': use all, delta, compression or none.")]
    [DataRow("bench forecast|--from|/", "--from /: a folder, not a saved bench forecast result.")]
    [DataRow("bench plan|--from|/nonexistent-mk.json", "--from /nonexistent-mk.json: cannot be read (")]
    public void AnOptionThatCanOnlyFail_IsRefusedAtOnce(string args, string message)
    {
        // Each ran first and then failed: libvirt plan measured for seconds and then threw a stack
        // trace, the benches ran to the end before finding --out unwritable, plan wrote JSON into
        // FILE.html, and "6,4MiB" was 64 MiB.
        string[] words = args.Split('|');
        string[] argv = [.. words[0].Split(' '), .. words[1..]];
        (int exit, string stdout, string stderr) = CliProcess.Run(argv);
        Assert.AreEqual(2, exit, $"{stdout}\n{stderr}");
        StringAssert.Contains(stderr, message);
        Assert.IsFalse(stderr.Contains("   at ", System.StringComparison.Ordinal), stderr);
        Assert.IsFalse(File.Exists("plan.html"), "nothing was written");
    }
}
