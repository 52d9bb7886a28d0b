using System;
using System.IO;
using System.Linq;
using System.Text.Json;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.IntegrationTests.TestSupport;
using MigrateKit.Tests.Cli;

namespace MigrateKit.IntegrationTests.Cli;

/// <summary>
/// What <c>demo</c> prints when stdout is a file or a pipe (CliProcess redirects it): one plain line
/// per round and the summary as <c>name: value</c> lines, with no live table, spinner, box drawing
/// or escape sequences.
/// </summary>
[TestClass]
public sealed partial class CliPlainOutputTests
{
    [TestInitialize]
    public void RequireWriteTracking() => WriteTrackingRequirement.Require();

    [TestMethod]
    public void Demo_WithStdoutRedirected_PrintsOneParseableLinePerRound_AndAPlainSummary()
    {
        string report = Path.Combine(Path.GetTempPath(), $"migratekit-plain-{Guid.NewGuid():N}.json");
        try
        {
            (int exit, string stdout, string stderr) = CliProcess.Run(
                ["demo", "--vm", "hostvm", "--memory", "64MiB", "--hot", "8MiB", "--workload", "sweep", "--bandwidth", "200MiB/s", "--report", report],
                TimeSpan.FromMinutes(2));
            Assert.AreEqual(0, exit, stderr);

            Assert.IsFalse(stdout.Any(c => c is >= '\u2500' and <= '\u259F'), $"box drawing in redirected output:\n{stdout}");
            Assert.IsFalse(stdout.Contains('\u001b'), $"escape sequences in redirected output:\n{stdout}");
            Assert.IsFalse(stdout.Contains('\r'), $"a carriage return (a redrawn line) in redirected output:\n{stdout}");

            string[] lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Match[] rounds = lines.Where(l => l.StartsWith("round ", StringComparison.Ordinal)).Select(l => RoundLine().Match(l)).ToArray();
            Assert.IsTrue(rounds.All(m => m.Success), $"a round line that does not parse:\n{stdout}");

            using JsonDocument doc = JsonDocument.Parse(File.ReadAllText(report));
            JsonElement root = doc.RootElement;
            int expected = root.GetProperty("rounds").GetInt32();
            Assert.IsGreaterThan(0, expected);
            Assert.HasCount(expected, rounds, stdout);
            JsonElement[] detail = [.. root.GetProperty("roundsDetail").EnumerateArray()];
            for (int i = 0; i < expected; i++)
            {
                Assert.AreEqual(detail[i].GetProperty("round").GetInt32(), int.Parse(rounds[i].Groups["round"].Value, System.Globalization.CultureInfo.InvariantCulture));
                Assert.AreEqual(detail[i].GetProperty("dirtyPages").GetUInt64(), ulong.Parse(rounds[i].Groups["dirty"].Value, System.Globalization.CultureInfo.InvariantCulture));
                // A line shows the throttle decided after its round; a report row the one in force during its round.
                Assert.AreEqual(detail[i + 1].GetProperty("throttlePercent").GetInt32(), int.Parse(rounds[i].Groups["throttle"].Value, System.Globalization.CultureInfo.InvariantCulture));
                Assert.AreEqual(detail[i].GetProperty("deltaPages").GetUInt64(), ulong.Parse(rounds[i].Groups["delta"].Value, System.Globalization.CultureInfo.InvariantCulture));
                Assert.AreEqual(detail[i].GetProperty("compressedPages").GetUInt64(), ulong.Parse(rounds[i].Groups["compressed"].Value, System.Globalization.CultureInfo.InvariantCulture));
                Assert.AreEqual(detail[i].GetProperty("pagesSent").GetUInt64(), ulong.Parse(rounds[i].Groups["data"].Value, System.Globalization.CultureInfo.InvariantCulture));
                Assert.AreEqual(detail[i].GetProperty("action").GetString(), rounds[i].Groups["action"].Value, ignoreCase: true);
            }

            // After the rounds: a title, then every line "name: value".
            string[] summary = lines.SkipWhile(l => l.StartsWith("round ", StringComparison.Ordinal)).ToArray();
            Assert.AreEqual("migration completed", summary[0]);
            Assert.IsTrue(summary.Skip(1).All(l => SummaryLine().IsMatch(l)), $"a summary line that is not 'name: value':\n{stdout}");
            CollectionAssert.Contains(summary, "verified: yes");
            CollectionAssert.Contains(summary, $"rounds: {expected}");
        }
        finally
        {
            File.Delete(report);
        }
    }

    [GeneratedRegex(@"^round (?<round>\d+): sent [\d.]+ [KMGT]?i?B, remaining [\d.]+ [KMGT]?i?B, dirty (?<dirty>\d+) pages, hot \d+ pages, deferred \d+ pages, delta (?<delta>\d+) pages, compressed (?<compressed>\d+) pages, data (?<data>\d+) pages, dirty rate \d+ p/s, bandwidth [\d.]+ [KMGT]?i?B/s, throttle (?<throttle>\d+) %, predicted downtime [\d.]+ ms \(\d+–\d+ ms [a-z]+\), action (?<action>[a-z]+)$")]
    private static partial Regex RoundLine();

    [GeneratedRegex(@"^[a-z][^:]*: \S.*$")]
    private static partial Regex SummaryLine();
}
