using System;
using System.IO;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Tests.Cli;

namespace MigrateKit.Tests.Reports;

/// <summary><c>migratekit report</c>, run as a process: pictures from saved reports, usage errors (exit 2) that name the problem.</summary>
[TestClass]
public sealed class ReportCommandTests
{
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("migratekit-report-cli-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [TestMethod]
    public void Report_WritesAPngNextToTheJson_ByDefault()
    {
        string json = Save(SampleReports.Converging());
        (int exit, string stdout, string stderr) = Run("report", json);
        Assert.AreEqual(0, exit, stderr);
        string png = Path.Combine(_dir, "run.png");
        Assert.AreEqual(png, stdout.Trim());
        using var bitmap = ReportRendererTests.Decode(png);
        Assert.AreEqual(1400, bitmap.Width);
    }

    [TestMethod]
    public void Report_WritesAnHtmlPage_WhenOutEndsInHtml()
    {
        string json = Save(SampleReports.AbortedAfterOneRound());
        string html = Path.Combine(_dir, "page.html");
        (int exit, _, string stderr) = Run("report", json, "--out", html, "--width", "1000", "--height", "800");
        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(File.ReadAllText(html), "data:image/png;base64,");
    }

    [TestMethod]
    public void Report_OfAMissingFile_IsAUsageError()
    {
        string json = Path.Combine(_dir, "missing.json");
        (int exit, string stdout, string stderr) = Run("report", json);
        Assert.AreEqual(2, exit);
        Assert.AreEqual("", stdout);
        StringAssert.Contains(stderr, $"{json}: no such file.");
    }

    [TestMethod]
    public void Report_OfMalformedJson_IsAUsageError()
    {
        string json = Path.Combine(_dir, "run.json");
        File.WriteAllText(json, "{ \"status\": ");
        (int exit, _, string stderr) = Run("report", json);
        Assert.AreEqual(2, exit);
        StringAssert.Contains(stderr, "not a migration report: malformed JSON");
        Assert.IsFalse(File.Exists(Path.Combine(_dir, "run.png")));
    }

    [TestMethod]
    public void Report_ToAnUnknownExtension_IsAUsageError()
    {
        string json = Save(SampleReports.Converging());
        (int exit, _, string stderr) = Run("report", json, "--out", Path.Combine(_dir, "run.svg"));
        Assert.AreEqual(2, exit);
        StringAssert.Contains(stderr, "the extension '.svg' is not one the report command writes; use FILE.png or FILE.html");
    }

    private string Save(MigrationReport report)
    {
        string path = Path.Combine(_dir, "run.json");
        File.WriteAllText(path, report.ToJson());
        return path;
    }

    private static (int Exit, string Stdout, string Stderr) Run(params string[] args) => CliProcess.Run(args);
}
