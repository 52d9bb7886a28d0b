using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.Json;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>
/// <c>bench libvirt-strategies</c> without hosts: its schedule (<c>--plan</c>), its medians and
/// targets on made-up runs summarized with <c>--summarize</c>, the JSON it prints, and its usage errors.
/// </summary>
[TestClass]
public sealed class StrategyBenchTests
{
    private static readonly string[] Configs = ["libvirt-default", "libvirt-autoconverge", "libvirt-xbzrle", "migratekit-auto"];

    [TestMethod]
    public void Plan_RotatesTheConfigurationsOneStepPerRun_SoNoneAlwaysGoesFirst()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "libvirt-strategies", "--plan", "--json", "--runs", "5", "--guests", "random,idle"]);

        Assert.AreEqual(0, exit, stderr);
        using JsonDocument doc = JsonDocument.Parse(stdout);
        JsonElement[] slots = [.. doc.RootElement.GetProperty("schedule").EnumerateArray()];
        Assert.HasCount(2 * 5 * 4, slots);
        CollectionAssert.AreEqual(new[] { "random", "idle" }, slots.Select(s => s.GetProperty("guest").GetString()).Distinct().ToArray(), "one guest after the other, as --guests names them");
        foreach (IGrouping<(string?, int), JsonElement> run in slots.GroupBy(s => (s.GetProperty("guest").GetString(), s.GetProperty("run").GetInt32())))
        {
            int shift = (run.Key.Item2 - 1) % 4;
            CollectionAssert.AreEqual(Configs.Skip(shift).Concat(Configs.Take(shift)).ToArray(), run.Select(s => s.GetProperty("config").GetString()).ToArray(), $"run {run.Key}");
            CollectionAssert.AreEqual(new[] { 1, 2, 3, 4 }, run.Select(s => s.GetProperty("position").GetInt32()).ToArray());
        }

        string?[] firsts = [.. slots.Where(s => s.GetProperty("guest").GetString() == "idle" && s.GetProperty("position").GetInt32() == 1).Select(s => s.GetProperty("config").GetString())];
        CollectionAssert.AreEquivalent(Configs, firsts.Take(4).ToArray(), "over four runs each configuration goes first once");
    }

    [TestMethod]
    public void Summarize_MediansOverConvergedRunsOnly_BestPlainConvergedMostThenFastest_AndTheTargets()
    {
        // A failed run makes the exit code 4; the summary is printed all the same.
        JsonElement guest = Summarize(limitMs: 300, expectedExit: 4, Guest("onebyte",
            Config("libvirt-default", Plain(3000, 100, 200), Plain(5000, 120, 400), NotConverged(30_000)),
            Config("libvirt-autoconverge", Plain(9000, 200, 900), Plain(8000, 150, 800), Plain(10_000, 250, 1000)),
            Config("libvirt-xbzrle", Plain(2000, 30, 200), Failed()),
            Config("migratekit-auto", Auto(7000, 40, predicted: 45), Auto(8500, 50, predicted: 70), Auto(7500, 20, predicted: 29))))
            .GetProperty("guests")[0];

        JsonElement[] configs = [.. guest.GetProperty("configs").EnumerateArray()];
        CollectionAssert.AreEqual(Configs, configs.Select(c => c.GetProperty("config").GetString()).ToArray());

        // libvirt-default: the two converged runs (even count: the mean of the middle two); the aborted one is left out.
        JsonElement plain = configs[0];
        Assert.AreEqual(4000, plain.GetProperty("medianWallMs").GetDouble(), 1e-9);
        Assert.AreEqual(110, plain.GetProperty("medianDowntimeMs").GetDouble(), 1e-9);
        Assert.AreEqual(300, plain.GetProperty("medianMiB").GetDouble(), 1e-9);
        Assert.AreEqual(2, plain.GetProperty("converged").GetInt32());
        Assert.HasCount(3, plain.GetProperty("runs").EnumerateArray().ToArray());
        Assert.AreEqual(JsonValueKind.Null, plain.GetProperty("medianPredictedDowntimeMs").ValueKind, "plain libvirt forecasts nothing");

        // Odd count: the middle value.
        Assert.AreEqual(9000, configs[1].GetProperty("medianWallMs").GetDouble(), 1e-9);
        Assert.AreEqual(1, configs[2].GetProperty("failed").GetInt32());

        // xbzrle is fastest but converged once; auto-converge converged every time: it is the one to beat.
        Assert.AreEqual("libvirt-autoconverge", guest.GetProperty("bestPlainConfig").GetString());
        Assert.AreEqual(9000, guest.GetProperty("bestPlainMedianWallMs").GetDouble(), 1e-9);
        Assert.AreEqual(7500, guest.GetProperty("autoMedianWallMs").GetDouble(), 1e-9);
        Assert.AreEqual(7500.0 / 9000, guest.GetProperty("autoVsBest").GetDouble(), 1e-9);

        // Forecast errors 5 ms (within 10 ms), 20 ms of 50 ms (over 12.5 ms), 9 ms of 20 ms (within the 10 ms floor).
        JsonElement auto = configs[3];
        Assert.AreEqual(2, auto.GetProperty("forecastsWithin").GetInt32());
        Assert.AreEqual(45, auto.GetProperty("medianPredictedDowntimeMs").GetDouble(), 1e-9);
        Assert.AreEqual(9, auto.GetProperty("medianForecastErrorMs").GetDouble(), 1e-9);
        JsonElement targets = guest.GetProperty("targets");
        Assert.IsTrue(targets.GetProperty("wallTime").GetProperty("met").GetBoolean(), targets.ToString());
        StringAssert.Contains(targets.GetProperty("wallTime").GetProperty("detail").GetString(), "libvirt-autoconverge 9000 ms: 0.83×");
        Assert.IsTrue(targets.GetProperty("downtime").GetProperty("met").GetBoolean(), targets.ToString());
        Assert.IsFalse(targets.GetProperty("forecast").GetProperty("met").GetBoolean(), targets.ToString());
        StringAssert.Contains(targets.GetProperty("forecast").GetProperty("detail").GetString(), "2/3 within max(10 ms, 25 %); worst: forecast 70.0 ms vs actual 50.0 ms");
        Assert.IsFalse(guest.GetProperty("targetsMet").GetBoolean());
    }

    [TestMethod]
    public void Summarize_AutoSlowerThanTheBest_OverTheLimit_OrNotConverging_MissesItsTargets_AndAllMetIsMet()
    {
        JsonElement result = Summarize(limitMs: 100,
            Guest("random",
                Config("libvirt-default", Plain(2000, 80, 100)),
                Config("migratekit-auto", Auto(2100, 120, predicted: 125))),
            Guest("idle",
                Config("libvirt-default", Plain(2000, 30, 1)),
                Config("migratekit-auto", Auto(1500, 30, predicted: 30), NotConverged(30_000))),
            Guest("onebyte",
                Config("libvirt-xbzrle", Plain(3000, 30, 200)),
                Config("migratekit-auto", Auto(3000, 100, predicted: 110))));

        JsonElement[] guests = [.. result.GetProperty("guests").EnumerateArray()];
        JsonElement random = guests[0].GetProperty("targets");
        Assert.IsFalse(random.GetProperty("wallTime").GetProperty("met").GetBoolean(), "1.05× the best");
        Assert.IsFalse(random.GetProperty("downtime").GetProperty("met").GetBoolean(), "120 ms over 100 ms");
        StringAssert.Contains(random.GetProperty("downtime").GetProperty("detail").GetString(), "worst 120.0 ms of 100 ms; 1 of 1 converged runs over the limit");
        Assert.IsTrue(random.GetProperty("forecast").GetProperty("met").GetBoolean(), "5 ms off");

        JsonElement idle = guests[1].GetProperty("targets");
        Assert.IsFalse(idle.GetProperty("wallTime").GetProperty("met").GetBoolean(), "a run did not converge");
        StringAssert.Contains(idle.GetProperty("wallTime").GetProperty("detail").GetString(), "converged 1/2");

        // Equal to the best (1.00×), exactly at the limit, 10 ms off a 100 ms downtime: all met.
        Assert.IsTrue(guests[2].GetProperty("targetsMet").GetBoolean(), guests[2].GetProperty("targets").ToString());
        Assert.IsFalse(result.GetProperty("targetsMet").GetBoolean());
    }

    [TestMethod]
    public void Summarize_AFailedRun_IsExitCode4_AndTheTextShowsATablePerGuestWithTheTargets()
    {
        string file = Save(100, Guest("idle", Config("libvirt-default", Plain(2000, 30, 1), Failed()), Config("migratekit-auto", Auto(1500, 30, predicted: 31))));
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "libvirt-strategies", "--summarize", file]);

            Assert.AreEqual(4, exit, stderr);
            StringAssert.Contains(stdout, "libvirt-default");
            StringAssert.Contains(stdout, "1/2");
            StringAssert.Contains(stdout, "met    wall time ≤ 1.0× the best plain libvirt: auto 1500 ms vs libvirt-default 2000 ms: 0.75×");
            StringAssert.Contains(stdout, "met    downtime within 100 ms in every run");
        }
        finally
        {
            File.Delete(file);
        }
    }

    [TestMethod]
    public void Help_NamesTheToolAndGivesAnExample()
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "libvirt-strategies", "--help"]);

        Assert.AreEqual(0, exit, stderr);
        StringAssert.Contains(stdout, "Usage:\n  migratekit bench libvirt-strategies");
        StringAssert.Contains(stdout, "Example: migratekit bench libvirt-strategies --to ");
    }

    [TestMethod]
    [DataRow("--runs 1", "--to is required")]
    [DataRow("--to qemu:///b --runs 0", "--runs 0: use 1 to 100")]
    [DataRow("--to qemu:///b --guests onebyte,busy", "--guests: 'busy' is not a guest of this bench: use onebyte, random, idle")]
    [DataRow("--to qemu:///b --memory 64MiB", "--memory 64MiB: the guests have 128 MiB to 3 GiB")]
    [DataRow("--to qemu:///b --bandwidth unlimited", "--bandwidth unlimited: the bench compares under a bandwidth limit")]
    [DataRow("--to qemu:///b --max-downtime 0ms", "--max-downtime must be from 1 ms")]
    [DataRow("--to qemu:///system", "--from and --to are the same URI")]
    public void BadOptions_AreUsageErrors_BeforeAnyHostIsContacted(string options, string message)
    {
        (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "libvirt-strategies", .. options.Split(' ')]);

        Assert.AreEqual(2, exit, stderr);
        StringAssert.Contains(stderr, message);
        Assert.AreEqual("", stdout);
    }

    private static JsonElement Summarize(double limitMs, params string[] guests) => Summarize(limitMs, 0, guests);

    private static JsonElement Summarize(double limitMs, int expectedExit, params string[] guests)
    {
        string file = Save(limitMs, guests);
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(["bench", "libvirt-strategies", "--summarize", file, "--json"]);
            Assert.AreEqual(expectedExit, exit, stderr);
            using JsonDocument doc = JsonDocument.Parse(stdout);
            return doc.RootElement.Clone();
        }
        finally
        {
            File.Delete(file);
        }
    }

    private static string Save(double limitMs, params string[] guests)
    {
        string file = Path.Combine(Path.GetTempPath(), $"strategy-bench-{Guid.NewGuid():N}.json");
        File.WriteAllText(file, string.Create(CultureInfo.InvariantCulture,
            $$"""{"from":"qemu:///a","to":"qemu:///b","runs":3,"memoryBytes":1073741824,"bandwidthBytesPerSecond":104857600,"maxDowntimeMs":{{limitMs}},"deadlineMs":30000,"xbzrleCacheBytes":268435456,"guests":[{{string.Join(",", guests)}}]}"""));
        return file;
    }

    private static string Guest(string name, params string[] configs) => $$"""{"guest":"{{name}}","configs":[{{string.Join(",", configs)}}]}""";

    private static string Config(string name, params string[] runs) =>
        $$"""{"config":"{{name}}","runs":[{{string.Join(",", runs.Select((r, i) => r.Replace("\"run\":0", $"\"run\":{i + 1}", StringComparison.Ordinal).Replace("CONFIG", name, StringComparison.Ordinal)))}}]}""";

    private static string Plain(double wallMs, double downtimeMs, double miB) => Row("converged", wallMs, downtimeMs, miB, null);

    private static string Auto(double wallMs, double downtimeMs, double predicted) => Row("converged", wallMs, downtimeMs, 100, predicted);

    private static string NotConverged(double wallMs) => Row("notConverged", wallMs, null, null, null);

    private static string Failed() => Row("failed", null, null, null, null);

    private static string Row(string outcome, double? wallMs, double? downtimeMs, double? miB, double? predicted)
    {
        static string N(double? v) => v is double d ? d.ToString(CultureInfo.InvariantCulture) : "null";
        var fields = new List<string>
        {
            "\"run\":0", "\"position\":1", "\"config\":\"CONFIG\"", "\"forward\":true", $"\"outcome\":\"{outcome}\"",
            $"\"wallMs\":{N(wallMs)}", $"\"jobMs\":{N(wallMs / 2)}", $"\"downtimeMs\":{N(downtimeMs)}",
            $"\"bytes\":{(miB is double m ? ((ulong)(m * 1048576)).ToString(CultureInfo.InvariantCulture) : "null")}",
            $"\"predictedDowntimeMs\":{N(predicted)}",
        };
        return "{" + string.Join(",", fields) + "}";
    }
}
