using System;
using System.Collections.Generic;
using System.Diagnostics.Metrics;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Diagnostics;

namespace MigrateKit.Tests.Diagnostics;

/// <summary>
/// The telemetry contract is written once, in the README's "Logs, metrics and traces" section:
/// its table must list exactly the instruments the library creates, with their kinds and units,
/// and the section must name every span and tag.
/// </summary>
[TestClass]
public sealed partial class TelemetryContractTests
{
    private static readonly string Section = ReadSection();

    [TestMethod]
    public void ReadmeTable_ListsExactlyTheInstruments_WithTheirKindsAndUnits()
    {
        string[] documented = InstrumentRow().Matches(Section)
            .Select(m => $"{m.Groups["name"].Value} {m.Groups["kind"].Value.Replace("&lt;", "<", StringComparison.Ordinal).Replace("&gt;", ">", StringComparison.Ordinal)} {m.Groups["unit"].Value}")
            .Order().ToArray();
        string[] created = typeof(MigrateKitTelemetry).GetFields(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Select(f => f.GetValue(null)).OfType<Instrument>()
            .Select(i => $"{i.Name} {KindOf(i)} {i.Unit}")
            .Order().ToArray();

        Assert.IsNotEmpty(created);
        Assert.AreSequenceEqual(created, documented, "the README's instrument table and MigrateKitTelemetry disagree");
    }

    [TestMethod]
    public void ReadmeSection_NamesEverySpanAndTag()
    {
        string[] names = [.. Constants(typeof(MigrateKitTelemetry.Spans)), .. Constants(typeof(MigrateKitTelemetry.Tags))];
        Assert.IsNotEmpty(names);
        string[] missing = names.Where(n => !Section.Contains($"`{n}`", StringComparison.Ordinal)).ToArray();
        Assert.IsEmpty(missing, $"the README does not name: {string.Join(", ", missing)}");
    }

    private static IEnumerable<string> Constants(Type type) =>
        type.GetFields(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
            .Where(f => f.IsLiteral).Select(f => (string)f.GetRawConstantValue()!);

    private static string KindOf(Instrument instrument)
    {
        Type type = instrument.GetType();
        return $"{type.Name[..type.Name.IndexOf('`', StringComparison.Ordinal)]}<{type.GetGenericArguments()[0].Name switch { "Int64" => "long", "Int32" => "int", "Double" => "double", var other => other }}>";
    }

    private static string ReadSection()
    {
        string readme = File.ReadAllText(RepositoryRoot.Combine("README.md"));
        int start = readme.IndexOf("### Logs, metrics and traces", StringComparison.Ordinal);
        Assert.IsGreaterThanOrEqualTo(0, start, "README.md has no 'Logs, metrics and traces' section");
        int end = readme.IndexOf("\n#", start + 4, StringComparison.Ordinal);
        return end < 0 ? readme[start..] : readme[start..end];
    }

    [GeneratedRegex(@"^\| `(?<name>migratekit\.[\w.]+)` \| (?<kind>[^|]+?) \| `(?<unit>[^`]+)` \|", RegexOptions.Multiline)]
    private static partial Regex InstrumentRow();
}
