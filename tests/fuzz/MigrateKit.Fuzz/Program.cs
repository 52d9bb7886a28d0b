using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using SharpFuzz;

namespace MigrateKit.Fuzz;

/// <summary>
/// afl++ harnesses for MigrateKit's decoders, one per target:
/// <c>MigrateKit.Fuzz TARGET</c> runs the target under afl-fuzz (SharpFuzz's fork server);
/// <c>MigrateKit.Fuzz TARGET FILE…</c> runs the target once on each file (to replay a crash);
/// <c>MigrateKit.Fuzz seeds DIR</c> writes the seed corpus, DIR/TARGET/*.bin.
/// Replay and seeds run on the ordinary build: the instrumented assemblies (tests/fuzz/bin)
/// only work under the fork server.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        if (args.Length == 2 && args[0] == "seeds")
        {
            WriteSeeds(args[1]);
            return 0;
        }

        if (args.Length == 0 || !Targets.All.TryGetValue(args[0], out Targets.Target? target))
        {
            Console.Error.WriteLine($"usage: MigrateKit.Fuzz ({string.Join('|', Targets.All.Keys)}) [FILE…] | seeds DIR");
            return 2;
        }

        if (args.Length == 1)
        {
            Fuzzer.OutOfProcess.Run(stream => target.Run(ReadAll(stream)));
            return 0;
        }

        foreach (string file in args.Skip(1))
        {
            target.Run(File.ReadAllBytes(file));
            Console.WriteLine($"{file}: ok");
        }

        return 0;
    }

    private static void WriteSeeds(string directory)
    {
        foreach ((string name, Targets.Target target) in Targets.All)
        {
            string dir = Path.Combine(directory, name);
            Directory.CreateDirectory(dir);
            foreach ((string seedName, byte[] bytes) in target.Seeds())
            {
                target.Run(bytes);
                File.WriteAllBytes(Path.Combine(dir, seedName + ".bin"), bytes);
            }
        }
    }

    private static byte[] ReadAll(Stream stream)
    {
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
