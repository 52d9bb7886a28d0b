using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MigrateKit.Benchmarks;

/// <summary>
/// Runs the benchmarks in-process (no generated project to build on a 2-core machine):
/// <c>dotnet run -c Release --project tests/MigrateKit.Benchmarks -- --filter '*'</c>; with
/// <c>harvest-vs-floor</c> first, the harvest against its C floor in one run (<see cref="HarvestVsFloor"/>);
/// with <c>page-encoding-sizes</c>, the encoded size of each kind of page (<see cref="PageEncodingBenchmarks.PrintSizes"/>).
/// </summary>
public static class Program
{
    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "harvest-vs-floor")
        {
            return HarvestVsFloor.Run(args[1..]);
        }

        if (args.Length > 0 && args[0] == "page-encoding-sizes")
        {
            return PageEncodingBenchmarks.PrintSizes();
        }

        IConfig config = DefaultConfig.Instance
            .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance))
            .AddDiagnoser(MemoryDiagnoser.Default);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
