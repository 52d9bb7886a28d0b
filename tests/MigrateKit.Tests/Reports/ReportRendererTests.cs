using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Migration;
using MigrateKit.Reports;
using ScottPlot;
using SkiaSharp;

namespace MigrateKit.Tests.Reports;

/// <summary>ReportRenderer: PNGs with every chart drawn, and self-contained HTML pages.</summary>
[TestClass]
public sealed partial class ReportRendererTests
{
    private string _dir = "";

    public TestContext TestContext { get; set; } = null!;

    [TestInitialize]
    public void CreateDirectory() => _dir = Directory.CreateTempSubdirectory("migratekit-report-").FullName;

    [TestCleanup]
    public void DeleteDirectory()
    {
        if (TestContext.CurrentTestOutcome == UnitTestOutcome.Passed)
        {
            Directory.Delete(_dir, recursive: true);
        }
        else
        {
            TestContext.WriteLine($"pictures kept in {_dir}");
        }
    }

    [TestMethod]
    public void RenderPng_DrawsEveryChartOfAConvergingMigration()
    {
        string path = Path.Combine(_dir, "converging.png");
        ReportRenderer.RenderPng(SampleReports.Converging(), path);

        using SKBitmap bitmap = Decode(path);
        Assert.AreEqual(1400, bitmap.Width);
        Assert.AreEqual(1000, bitmap.Height);
        AssertHeaderHasText(bitmap);
        PixelRect[] charts = ReportRenderer.ChartRectangles(1400, 1000);
        Assert.HasCount(ReportRenderer.ChartTitles.Count, charts);
        for (int i = 0; i < charts.Length; i++)
        {
            // Inside the frame: its dark lines would count as drawing.
            PixelRect data = Inset(ReportRenderer.DataArea(charts[i], i == charts.Length - 1), 3);
            (int colours, double coloured) = Measure(bitmap, data);
            string chart = ReportRenderer.ChartTitles[i];
            Assert.IsGreaterThanOrEqualTo(12, colours, $"'{chart}': {colours} distinct colours in its data area");
            Assert.IsGreaterThanOrEqualTo(0.004, coloured, $"'{chart}': {coloured:P2} of its data area is drawn in colour");

            // Title, tick labels and axis label: dark text around the data area.
            (_, double dark) = Measure(bitmap, charts[i], Dark);
            Assert.IsGreaterThanOrEqualTo(0.003, dark, $"'{chart}': {dark:P2} of the chart is text");
        }

        // The bytes chart: the switchover bar is orange, the rounds' bars blue.
        PixelRect bytes = ReportRenderer.DataArea(charts[1], false);
        Assert.IsGreaterThan(500, Count(bitmap, bytes, c => Near(c, 0x1f, 0x77, 0xb4)), "blue bars of the pre-copy rounds");
        Assert.IsGreaterThan(200, Count(bitmap, bytes, c => Near(c, 0xff, 0x7f, 0x0e)), "orange bar of the switchover");

        // The downtime chart: the limit (red) and the actual downtime (green) are drawn.
        PixelRect downtime = ReportRenderer.DataArea(charts[0], false);
        Assert.IsGreaterThan(300, Count(bitmap, downtime, c => Near(c, 0xd6, 0x27, 0x28)), "the red limit line");
        Assert.IsGreaterThan(300, Count(bitmap, downtime, c => Near(c, 0x2c, 0xa0, 0x2c)), "the green actual-downtime line");
    }

    [TestMethod]
    [DataRow(640, 560)]
    [DataRow(900, 700)]
    [DataRow(2400, 1600)]
    public void RenderPngBytes_HasTheAskedSize(int width, int height)
    {
        byte[] png = ReportRenderer.RenderPngBytes(SampleReports.Converging(), width, height);
        using SKBitmap bitmap = SKBitmap.Decode(png);
        Assert.AreEqual(width, bitmap.Width);
        Assert.AreEqual(height, bitmap.Height);
        (int colours, _) = Measure(bitmap, new PixelRect(0, width, height, 0));
        Assert.IsGreaterThan(50, colours);
    }

    [TestMethod]
    public void RenderPng_RejectsSizesOutOfRange()
    {
        MigrationReport report = SampleReports.Converging();
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ReportRenderer.RenderPngBytes(report, 100, 1000));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ReportRenderer.RenderPngBytes(report, 1400, 10));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ReportRenderer.RenderPngBytes(report, 100_000, 1000));
    }

    public static IEnumerable<object[]> UnusualReports =>
    [
        ["failed-no-rounds", SampleReports.FailedWithoutRounds()],
        ["aborted-one-round", SampleReports.AbortedAfterOneRound()],
        ["libvirt-no-switchover-row", SampleReports.LibvirtCompleted()],
        ["empty", new MigrationReport()],
        ["nan-and-zeros", new MigrationReport
        {
            Status = MigrationStatus.Completed,
            Rounds = 1,
            DowntimeMs = 0,
            RoundsDetail =
            [
                new RoundReport { Round = 0, DirtyRate = double.NaN, Bandwidth = double.PositiveInfinity, PredictedDowntimeMs = double.NaN, Action = RoundAction.Switchover },
                new RoundReport { Round = 1, Action = RoundAction.Switchover },
            ],
        }],
    ];

    [TestMethod]
    [DynamicData(nameof(UnusualReports))]
    public void RenderPng_DrawsReportsWithFewOrNoRoundsAndNoDowntime(string name, MigrationReport report)
    {
        string path = Path.Combine(_dir, name + ".png");
        ReportRenderer.RenderPng(report, path);
        using SKBitmap bitmap = Decode(path);
        Assert.AreEqual(1400, bitmap.Width);
        AssertHeaderHasText(bitmap);
        foreach (PixelRect chart in ReportRenderer.ChartRectangles(1400, 1000))
        {
            (_, double dark) = Measure(bitmap, chart, Dark);
            Assert.IsGreaterThanOrEqualTo(0.002, dark, $"{name}: the chart at y={chart.Top} has its title and axes");
        }

        string html = ReportRenderer.RenderHtmlString(report);
        StringAssert.Contains(html, "data:image/png;base64,");
    }

    [TestMethod]
    public void RenderPng_FailedReportSaysWhyInTheHeader()
    {
        MigrationReport report = SampleReports.FailedWithoutRounds();
        StringAssert.StartsWith(ReportRenderer.Headline(report), "Migration failed during Handshake after 0 pre-copy rounds");
        StringAssert.Contains(ReportRenderer.Figures(report), "no downtime (never switched over)");
        StringAssert.Contains(ReportRenderer.Figures(report), "limit 300 ms");

        using SKBitmap bitmap = SKBitmap.Decode(ReportRenderer.RenderPngBytes(report));

        // The reason is written in the failure's red on the header's third line.
        Assert.IsGreaterThan(100, Count(bitmap, new PixelRect(20, 1400, ReportRenderer.HeaderHeight - 4, 60), c => Near(c, 0xd6, 0x27, 0x28, 60)));
    }

    [TestMethod]
    public void Headline_AndFigures_DescribeACompletedMigration()
    {
        MigrationReport report = SampleReports.Converging();
        Assert.AreEqual("Migration completed: 8 pre-copy rounds, then the switchover", ReportRenderer.Headline(report));
        string figures = ReportRenderer.Figures(report);
        StringAssert.StartsWith(figures, "downtime 212 ms (predicted 190 ms, error 10.5 %, limit 300 ms)");
        StringAssert.Contains(figures, "for 256.0 MiB of memory");
        StringAssert.Contains(figures, "max throttle 70 %");
        StringAssert.Contains(figures, "6,000 hot pages deferred");
    }

    [TestMethod]
    public void RenderHtml_EmbedsThePicture_AndTablesEveryRound()
    {
        string path = Path.Combine(_dir, "converging.html");
        MigrationReport report = SampleReports.Converging();
        ReportRenderer.RenderHtml(report, path);
        string html = File.ReadAllText(path);

        StringAssert.StartsWith(html, "<!DOCTYPE html>");
        Match image = DataUri().Match(html);
        Assert.IsTrue(image.Success, "a PNG data URI");
        using (SKBitmap bitmap = SKBitmap.Decode(Convert.FromBase64String(image.Groups[1].Value)))
        {
            Assert.IsNotNull(bitmap);
            Assert.AreEqual(1400, bitmap.Width);
            Assert.AreEqual(1000, bitmap.Height);
        }

        // Self-contained: nothing is fetched from elsewhere.
        Assert.DoesNotContain("http:", html);
        Assert.DoesNotContain("https:", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("<script", html);

        string rounds = html[html.IndexOf("<table id=\"rounds\">", StringComparison.Ordinal)..];
        rounds = rounds[..(rounds.IndexOf("</table>", StringComparison.Ordinal) + 8)];
        Assert.AreEqual(report.RoundsDetail.Count, Regex.Count(rounds, "<tr[ >]") - 1, "one row per round and the switchover, under a header row");
        Assert.AreEqual(1, Regex.Count(rounds, "<tr class=\"switchover\">"), "only the switchover row is marked, not the last round that decided it");
        StringAssert.Contains(rounds, "<th>predicted downtime</th>");
        StringAssert.Contains(rounds, "<th>harvest</th>");
        StringAssert.Contains(rounds, "<td class=\"n\">960.0 ms</td>");
        StringAssert.Contains(rounds, "<td>defer</td>");
        StringAssert.Contains(rounds, "not converging");

        string summary = html[html.IndexOf("<table class=\"summary\"", StringComparison.Ordinal)..];
        StringAssert.Contains(summary, "<th>downtime (actual)</th><td>212.4 ms</td>");
        StringAssert.Contains(summary, "<th>downtime (predicted)</th><td>190.0 ms</td>");
        StringAssert.Contains(summary, "<th>downtime limit</th><td>300.0 ms</td>");
        StringAssert.Contains(summary, "<th>prediction error</th><td>10.5 %</td>");
        StringAssert.Contains(summary, "10.2 ms (predicted 3.3 ms); the forecast includes +1.8 ms learned from past switchovers</td>", "the history's correction is named, not read as the commit's cost");
    }

    [TestMethod]
    public void RenderHtml_EscapesTheReason_AndSaysWhenThereAreNoRounds()
    {
        string html = ReportRenderer.RenderHtmlString(SampleReports.FailedWithoutRounds());
        StringAssert.Contains(html, "&lt;tcp:127.0.0.1:7000&gt; &amp; gave up");
        Assert.DoesNotContain("<tcp:", html);
        StringAssert.Contains(html, "<p id=\"rounds\">No rounds were recorded.</p>");
        StringAssert.Contains(html, "class=\"failed\"");
    }

    [TestMethod]
    public void FromJson_OfToJson_FeedsTheRenderer()
    {
        MigrationReport original = SampleReports.Converging();
        MigrationReport back = MigrationReport.FromJson(original.ToJson());
        Assert.AreEqual(original.DowntimeLimitMs, back.DowntimeLimitMs);
        Assert.HasCount(original.RoundsDetail.Count, back.RoundsDetail);
        Assert.AreEqual(original.RoundsDetail[^1].Action, back.RoundsDetail[^1].Action);

        byte[] fromOriginal = ReportRenderer.RenderPngBytes(original);
        byte[] fromJson = ReportRenderer.RenderPngBytes(back);
        using SKBitmap a = SKBitmap.Decode(fromOriginal);
        using SKBitmap b = SKBitmap.Decode(fromJson);
        Assert.AreEqual(a.Width, b.Width);
        Assert.AreEqual(a.Height, b.Height);
        Assert.IsTrue(a.GetPixelSpan().SequenceEqual(b.GetPixelSpan()), "the report read back draws the same picture");
    }

    internal static SKBitmap Decode(string path)
    {
        Assert.IsTrue(File.Exists(path), path);
        byte[] bytes = File.ReadAllBytes(path);
        CollectionAssert.AreEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G' }, bytes[..4], "PNG signature");
        SKBitmap? bitmap = SKBitmap.Decode(bytes);
        Assert.IsNotNull(bitmap, $"{path} decodes");
        return bitmap;
    }

    private static void AssertHeaderHasText(SKBitmap bitmap)
    {
        (_, double dark) = Measure(bitmap, new PixelRect(0, bitmap.Width, ReportRenderer.HeaderHeight, 0), Dark);
        Assert.IsGreaterThanOrEqualTo(0.01, dark, $"the header is {dark:P2} text");
    }

    /// <summary>Distinct colours in a rectangle, and the share of its pixels that <paramref name="ink"/> (default: a saturated colour, or a dark one) picks.</summary>
    private static (int Colours, double Fraction) Measure(SKBitmap bitmap, PixelRect rect, Func<SKColor, bool>? ink = null)
    {
        ink ??= c => Colourful(c) || Dark(c);
        var colours = new HashSet<SKColor>();
        int hits = 0;
        int total = 0;
        for (int y = (int)rect.Top; y < (int)rect.Bottom; y++)
        {
            for (int x = (int)rect.Left; x < (int)rect.Right; x++)
            {
                SKColor c = bitmap.GetPixel(x, y);
                colours.Add(c);
                hits += ink(c) ? 1 : 0;
                total++;
            }
        }

        return (colours.Count, total == 0 ? 0 : (double)hits / total);
    }

    private static PixelRect Inset(PixelRect rect, float by) => new(rect.Left + by, rect.Right - by, rect.Bottom - by, rect.Top + by);

    private static int Count(SKBitmap bitmap, PixelRect rect, Func<SKColor, bool> match)
    {
        int n = 0;
        for (int y = (int)rect.Top; y < (int)rect.Bottom; y++)
        {
            for (int x = (int)rect.Left; x < (int)rect.Right; x++)
            {
                n += match(bitmap.GetPixel(x, y)) ? 1 : 0;
            }
        }

        return n;
    }

    private static bool Colourful(SKColor c) => Math.Max(c.Red, Math.Max(c.Green, c.Blue)) - Math.Min(c.Red, Math.Min(c.Green, c.Blue)) > 60;

    private static bool Dark(SKColor c) => (c.Red + c.Green + c.Blue) / 3 < 110;

    private static bool Near(SKColor c, byte r, byte g, byte b, int tolerance = 30) =>
        Math.Abs(c.Red - r) <= tolerance && Math.Abs(c.Green - g) <= tolerance && Math.Abs(c.Blue - b) <= tolerance;

    [GeneratedRegex("src=\"data:image/png;base64,([A-Za-z0-9+/=]+)\"")]
    private static partial Regex DataUri();
}
