using System;
using System.CommandLine;
using System.Reflection;
using MigrateKit.Kvm;

namespace MigrateKit.Cli;

/// <summary>The <c>migratekit</c> command line.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        var root = new RootCommand("migratekit: live migration of KVM guests with dirty-page tracking, hot-page deferral and downtime forecasts.");
        root.Subcommands.Add(VersionCommand());
        return root.Parse(args).Invoke();
    }

    private static Command VersionCommand()
    {
        var command = new Command("version", "Print the MigrateKit version and what this host's KVM offers.");
        command.SetAction(_ =>
        {
            string version = typeof(KvmSystem).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "unknown";
            Console.WriteLine($"migratekit {version}");
            try
            {
                using KvmSystem kvm = KvmSystem.Open();
                Console.WriteLine($"kvm: {kvm.Path}, API {kvm.ApiVersion}, " +
                    $"manual-dirty-log-protect 0x{kvm.CheckExtension(KvmCapability.ManualDirtyLogProtect2):x}, " +
                    $"dirty-ring max {kvm.CheckExtension(KvmCapability.DirtyLogRing)} bytes, " +
                    $"memslots {kvm.CheckExtension(KvmCapability.MemorySlots)}");
            }
            catch (KvmException ex)
            {
                Console.WriteLine($"kvm: unavailable ({ex.Message})");
            }

            return 0;
        });
        return command;
    }
}
