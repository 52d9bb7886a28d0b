using System.IO;
using System.Linq;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Reports;

namespace MigrateKit.Tests.Reports;

/// <summary>ReportFiles: the format follows the extension; loading names what is wrong with a file.</summary>
[TestClass]
public sealed class ReportFilesTests
{
    private string _dir = "";

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("migratekit-report-files-").FullName;

    [TestCleanup]
    public void DeleteDirectory() => Directory.Delete(_dir, recursive: true);

    [TestMethod]
    [DataRow("run.png", ReportFormat.Png)]
    [DataRow("RUN.PNG", ReportFormat.Png)]
    [DataRow("run.html", ReportFormat.Html)]
    [DataRow("run.htm", ReportFormat.Html)]
    [DataRow("run.json", null)]
    [DataRow("run.svg", null)]
    [DataRow("run", null)]
    public void PictureFormatOf_FollowsTheExtension(string name, ReportFormat? expected) =>
        Assert.AreEqual(expected, ReportFiles.PictureFormatOf(name));

    [TestMethod]
    public void Save_ToAPng_WritesThePictureAndTheJsonNextToIt()
    {
        string png = Path.Combine(_dir, "run.png");
        var written = ReportFiles.Save(SampleReports.Converging(), png);

        string json = Path.Combine(_dir, "run.json");
        CollectionAssert.AreEqual(new[] { png, json }, written.ToArray());
        using (var bitmap = ReportRendererTests.Decode(png))
        {
            Assert.AreEqual(1400, bitmap.Width);
        }

        MigrationReport back = ReportFiles.Load(json);
        Assert.AreEqual(212.4, back.DowntimeMs);
        Assert.HasCount(9, back.RoundsDetail);
    }

    [TestMethod]
    public void Save_ToAnHtmlFile_WritesThePageAndTheJsonNextToIt()
    {
        string html = Path.Combine(_dir, "run.html");
        ReportFiles.Save(SampleReports.AbortedAfterOneRound(), html);
        StringAssert.Contains(File.ReadAllText(html), "data:image/png;base64,");
        Assert.AreEqual(MigrationStatus.Aborted, ReportFiles.Load(Path.Combine(_dir, "run.json")).Status);
    }

    [TestMethod]
    public void Save_ToAnyOtherName_WritesOnlyTheJson()
    {
        string path = Path.Combine(_dir, "run.txt");
        var written = ReportFiles.Save(SampleReports.FailedWithoutRounds(), path);
        Assert.HasCount(1, written);
        Assert.AreEqual(SampleReports.FailedWithoutRounds().ToJson(), File.ReadAllText(path));
        Assert.HasCount(1, Directory.GetFiles(_dir));
    }

    [TestMethod]
    public void Load_OfAMissingFile_SaysSo()
    {
        string path = Path.Combine(_dir, "nope.json");
        ReportFileException ex = Assert.ThrowsExactly<ReportFileException>(() => ReportFiles.Load(path));
        Assert.AreEqual($"{path}: no such file.", ex.Message);
        Assert.AreEqual(path, ex.Path);
    }

    [TestMethod]
    [DataRow("{ \"status\": \"Completed\", ", "malformed JSON at line 1")]
    [DataRow("", "malformed JSON")]
    [DataRow("[1, 2]", "not a migration report (the JSON is an array, not an object)")]
    [DataRow("{ \"hello\": 1 }", "not a migration report (no \"status\" field)")]
    [DataRow("{ \"status\": \"Sideways\" }", "malformed JSON")]
    [DataRow("{ \"status\": \"Completed\", \"roundsDetail\": 5 }", "malformed JSON")]
    public void Load_OfSomethingElse_NamesTheProblem(string text, string problem)
    {
        string path = Path.Combine(_dir, "bad.json");
        File.WriteAllText(path, text);
        ReportFileException ex = Assert.ThrowsExactly<ReportFileException>(() => ReportFiles.Load(path));
        StringAssert.StartsWith(ex.Message, path + ": ");
        StringAssert.Contains(ex.Message, problem);
    }

    [TestMethod]
    public void Load_OfAFolder_SaysSo()
    {
        ReportFileException ex = Assert.ThrowsExactly<ReportFileException>(() => ReportFiles.Load(_dir));
        Assert.AreEqual($"{_dir}: a folder, not a report file.", ex.Message);
    }

    [TestMethod]
    public void JsonPathFor_ReplacesThePictureExtension() =>
        Assert.AreEqual(Path.Combine("out", "run.json"), ReportFiles.JsonPathFor(Path.Combine("out", "run.png")));
}
