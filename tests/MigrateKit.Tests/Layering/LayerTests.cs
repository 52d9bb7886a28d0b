using System;
using System.Collections.Generic;
using System.Linq;
using ArchUnitNET.Domain;
using ArchUnitNET.Domain.Dependencies;
using ArchUnitNET.Loader;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Layering;

/// <summary>
/// The layers of docs/ARCHITECTURE.md, checked on the compiled assemblies (every reference in
/// signatures and method bodies, as ArchUnitNET reads them from IL): a namespace references only
/// namespaces of lower layers, never one of its own layer or above, so there is no cycle.
/// </summary>
[TestClass]
public sealed class LayerTests
{
    /// <summary>Lowest first. Namespaces on one line are siblings and stay independent of each other.</summary>
    internal static readonly string[][] Layers =
    [
        ["MigrateKit"],
        ["MigrateKit.Interop"],
        ["MigrateKit.Memory"],
        ["MigrateKit.Kvm"],
        ["MigrateKit.Tracking"],
        ["MigrateKit.Estimation", "MigrateKit.Transport", "MigrateKit.Diagnostics"],
        ["MigrateKit.Migration"],
        ["LibvirtSharp.Interop", "MigrateKit.Guests", "MigrateKit.Qemu"],
        ["LibvirtSharp"],
        ["MigrateKit.Vmm", "MigrateKit.Libvirt", "MigrateKit.Reports"],
    ];

    private static readonly Lazy<Dictionary<(string From, string To), string>> Graph = new(BuildGraph);

    [TestMethod]
    public void EveryNamespace_HasALayer()
    {
        Dictionary<string, int> layerOf = LayerIndex();
        string[] unplaced = Graph.Value.Keys.SelectMany(e => new[] { e.From, e.To }).Distinct()
            .Where(ns => !layerOf.ContainsKey(ns)).Order().ToArray();
        Assert.IsEmpty(unplaced, $"Namespaces without a layer (place them in LayerTests.Layers and docs/ARCHITECTURE.md): {string.Join(", ", unplaced)}");
    }

    [TestMethod]
    public void NoNamespace_ReferencesItsOwnLayerOrAHigherOne()
    {
        string[] violations = LayerViolations(Graph.Value, LayerIndex()).ToArray();
        Assert.IsEmpty(violations, "References against the layering:\n" + string.Join("\n", violations));
    }

    [TestMethod]
    public void NamespaceGraph_HasNoCycle()
    {
        string[] cycles = Cycles(Graph.Value.Keys).Select(c => string.Join(" -> ", c)).ToArray();
        Assert.IsEmpty(cycles, "Namespace cycles:\n" + string.Join("\n", cycles));
    }

    [TestMethod]
    public void TheChecks_FindAnUpwardReferenceAndACycle()
    {
        // The checks themselves, on a graph with one reference added the wrong way round.
        var graph = new Dictionary<(string From, string To), string>
        {
            [("MigrateKit.Kvm", "MigrateKit.Interop")] = "MigrateKit.Kvm.KvmVm -> MigrateKit.Interop.NativeMethods",
            [("MigrateKit.Interop", "MigrateKit.Kvm")] = "MigrateKit.Interop.Errno -> MigrateKit.Kvm.KvmException",
        };

        string violation = LayerViolations(graph, LayerIndex()).Single();
        Assert.Contains("MigrateKit.Interop.Errno -> MigrateKit.Kvm.KvmException", violation);
        CollectionAssert.AreEquivalent(new[] { "MigrateKit.Interop", "MigrateKit.Kvm" }, Cycles(graph.Keys).Single().Distinct().ToArray());
    }

    private static Dictionary<string, int> LayerIndex() =>
        Layers.SelectMany((names, level) => names.Select(ns => (ns, level))).ToDictionary(p => p.ns, p => p.level);

    private static IEnumerable<string> LayerViolations(Dictionary<(string From, string To), string> graph, Dictionary<string, int> layerOf)
    {
        foreach (((string from, string to), string example) in graph.OrderBy(e => e.Key))
        {
            if (layerOf.TryGetValue(from, out int a) && layerOf.TryGetValue(to, out int b) && b >= a)
            {
                string how = b == a ? "a sibling in its own layer" : "a higher layer";
                yield return $"{from} (layer {a}) references {to}, {how} (layer {b}): {example}";
            }
        }
    }

    /// <summary>Strongly connected components of more than one namespace (Tarjan).</summary>
    private static List<List<string>> Cycles(IEnumerable<(string From, string To)> edges)
    {
        Dictionary<string, List<string>> next = edges.GroupBy(e => e.From).ToDictionary(g => g.Key, g => g.Select(e => e.To).ToList());
        var index = new Dictionary<string, int>();
        var low = new Dictionary<string, int>();
        var stack = new Stack<string>();
        var result = new List<List<string>>();

        void Visit(string v)
        {
            index[v] = low[v] = index.Count;
            stack.Push(v);
            foreach (string w in next.GetValueOrDefault(v) ?? [])
            {
                if (!index.ContainsKey(w))
                {
                    Visit(w);
                    low[v] = Math.Min(low[v], low[w]);
                }
                else if (stack.Contains(w))
                {
                    low[v] = Math.Min(low[v], index[w]);
                }
            }

            if (low[v] == index[v])
            {
                var component = new List<string>();
                string w;
                do
                {
                    w = stack.Pop();
                    component.Add(w);
                }
                while (w != v);

                if (component.Count > 1)
                {
                    result.Add(component.Order().ToList());
                }
            }
        }

        foreach (string v in next.Keys.Order())
        {
            if (!index.ContainsKey(v))
            {
                Visit(v);
            }
        }

        return result;
    }

    /// <summary>Namespace → namespace references between the shipped assemblies, each with one type-level example.</summary>
    private static Dictionary<(string From, string To), string> BuildGraph()
    {
        System.Reflection.Assembly[] assemblies =
        [
            typeof(Units).Assembly,
            typeof(global::MigrateKit.Vmm.HostVm).Assembly,
            typeof(global::MigrateKit.Guests.GuestPrograms).Assembly,
            typeof(global::LibvirtSharp.LibvirtConnection).Assembly,
            typeof(global::MigrateKit.Libvirt.LibvirtMigrator).Assembly,
            typeof(global::MigrateKit.Qemu.QmpClient).Assembly,
            typeof(global::MigrateKit.Reports.ReportRenderer).Assembly,
        ];
        ArchUnitNET.Domain.Architecture architecture = new ArchLoader().LoadAssemblies(assemblies).Build();
        HashSet<string> ours = architecture.Namespaces.Select(n => n.FullName).Where(IsOurs).ToHashSet();
        var graph = new Dictionary<(string From, string To), string>();
        foreach (IType type in architecture.Types)
        {
            string? from = type.Namespace?.FullName;
            if (from is null || !ours.Contains(from))
            {
                continue;
            }

            foreach (ITypeDependency dependency in type.Dependencies)
            {
                string? to = dependency.Target?.Namespace?.FullName;
                if (to is not null && to != from && ours.Contains(to))
                {
                    graph.TryAdd((from, to), $"{type.FullName} -> {dependency.Target!.FullName}");
                }
            }
        }

        return graph;
    }

    private static bool IsOurs(string ns) =>
        ns == "MigrateKit" || ns.StartsWith("MigrateKit.", StringComparison.Ordinal) ||
        ns == "LibvirtSharp" || ns.StartsWith("LibvirtSharp.", StringComparison.Ordinal);
}
