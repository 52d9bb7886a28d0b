using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Diagnosers;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.Emit;

namespace MigrateKit.Benchmarks;

/// <summary>
/// Runs the benchmarks in-process (no generated project to build on a 2-core machine):
/// <c>dotnet run -c Release --project tests/MigrateKit.Benchmarks -- --filter '*'</c>; with
/// <c>harvest-vs-floor</c> first, the harvest against its C floor in one run (<see cref="HarvestVsFloor"/>).
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

        IConfig config = DefaultConfig.Instance
            .AddJob(Job.Default.WithToolchain(InProcessEmitToolchain.Instance))
            .AddDiagnoser(MemoryDiagnoser.Default);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, config);
        return 0;
    }
}
