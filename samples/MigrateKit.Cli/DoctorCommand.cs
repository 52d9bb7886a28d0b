using System;
using System.Collections.Generic;
using System.CommandLine;
using System.Linq;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace MigrateKit.Cli;

/// <summary><c>doctor --json</c>'s one object.</summary>
internal sealed record DoctorAnswer(string For, bool Ok, IReadOnlyList<DoctorCheck> Checks);

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase, WriteIndented = true)]
[JsonSerializable(typeof(DoctorAnswer))]
internal sealed partial class DoctorJsonContext : JsonSerializerContext
{
}

/// <summary>
/// <c>migratekit doctor</c>: whether this machine can run what the user wants, one line per check
/// with the fix, so nobody has to guess why a MicroVm fell back to a HostVm or libvirt is unusable.
/// </summary>
internal static class DoctorCommand
{
    internal static Command Create()
    {
        var use = new Option<string>("--for")
        {
            Description = "What the machine must be ready for: microvm (KVM), hostvm (userfaultfd write-protect), libvirt, or bench (bench vs-qemu: KVM and QEMU). The default is microvm.",
            DefaultValueFactory = _ => "microvm",
            HelpName = "USE",
        };
        use.AcceptOnlyFromAmong(DoctorChecks.Uses);
        var connect = new Option<string?>("--connect") { Description = "Also check that this libvirt URI answers, e.g. qemu:///system.", HelpName = "URI" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (for, ok, checks[] with name, ok, required, detail, fix) instead of lines." };
        var command = new Command("doctor", "Check what this machine offers MigrateKit, one line per check with a fix.\n" +
            "Exit code 0 when everything the chosen use needs is there, 1 otherwise.\n" +
            "Example: migratekit doctor --for libvirt --connect qemu:///system")
        {
            use, connect, json,
        };
        command.SetAction(parse =>
        {
            string chosen = parse.GetValue(use) ?? "microvm";
            DoctorCheck[] checks = DoctorChecks.Run(chosen, parse.GetValue(connect));
            bool ok = checks.All(c => c.Ok || !c.Required);
            if (parse.GetValue(json))
            {
                Console.Out.WriteLine(JsonSerializer.Serialize(new DoctorAnswer(chosen, ok, checks), DoctorJsonContext.Default.DoctorAnswer));
            }
            else
            {
                foreach (DoctorCheck c in checks)
                {
                    string mark = c.Ok ? "ok  " : c.Required ? "FAIL" : "warn";
                    Console.Out.WriteLine(c.Fix is null ? $"{mark} {c.Name}: {c.Detail}" : $"{mark} {c.Name}: {c.Detail}; fix: {c.Fix}");
                }

                Console.Out.WriteLine(ok ? $"ready for {chosen}" : $"not ready for {chosen}: fix the FAIL lines above");
            }

            return ok ? 0 : 1;
        });
        return command;
    }
}
