using System;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Threading;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.IntegrationTests.TestSupport;

namespace MigrateKit.IntegrationTests.Guests;

/// <summary>
/// Boot-sector images under a real QEMU (KVM where /dev/kvm exists, TCG otherwise): the guest
/// programs run in a PC with a BIOS and report their passes as text on COM1.
/// </summary>
[TestClass]
[TestCategory("Qemu")]
public sealed class BootSectorQemuTests
{
    private const ulong MiB = 1UL << 20;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(60);

    [TestMethod]
    public void Sweep_Boots_AndCountsItsPassesOnCom1()
    {
        GuestProgram sweep = GuestPrograms.Sweep(MiB, 100 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        uint[] passes = Boot(BootSector.Build(sweep), lines: 20);
        Assert.AreSequenceEqual(Enumerable.Range(1, passes.Length).Select(i => (uint)i).ToArray(), passes);
    }

    [TestMethod]
    public void Verifier_Boots_AndFindsEveryPageAsItLeftIt()
    {
        GuestProgram verifier = GuestPrograms.Verifier(MiB, 100 * MiB, GuestPorts.Com1, BootSector.ProgramAddress);
        uint[] reports = Boot(BootSector.Build(verifier), lines: 20);
        Assert.IsFalse(reports.Any(r => (r & GuestPorts.FailureFlag) != 0), $"failures: {string.Join(", ", reports.Where(r => (r & GuestPorts.FailureFlag) != 0).Select(r => r.ToString("x8", CultureInfo.InvariantCulture)))}");
        Assert.AreSequenceEqual(Enumerable.Range(1, reports.Length).Select(i => (uint)i).ToArray(), reports);
    }

    [TestMethod]
    public void Fill_Boots_ReportsPassOne_AndHalts()
    {
        GuestProgram fill = GuestPrograms.Fill(MiB, 100 * MiB, GuestPorts.Com1, BootSector.ProgramAddress);
        Assert.AreSequenceEqual(new uint[] { 1 }, Boot(BootSector.Build(fill), lines: 1));
    }

    [TestMethod]
    public void AProgramOfManySectors_IsLoadedWhole()
    {
        // 20 000 nops run into a sweep: the stub must read all 40 sectors for the sweep to report.
        GuestProgram sweep = GuestPrograms.Sweep(MiB, 2 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        byte[] code = [.. Enumerable.Repeat((byte)0x90, 20_000), .. sweep.Code];
        byte[] image = BootSector.Build(sweep with { Code = code });
        Assert.HasCount(41 * 512, image);
        uint[] passes = Boot(image, lines: 3);
        Assert.AreSequenceEqual(new uint[] { 1, 2, 3 }, passes);
    }

    [TestMethod]
    public void AnImageCutShort_ReportsTheFailedDiskRead()
    {
        GuestProgram sweep = GuestPrograms.Sweep(MiB, 2 * MiB, ports: GuestPorts.Com1, loadAddress: BootSector.ProgramAddress);
        string text = BootText(BootSector.Build(sweep)[..512], until: s => s.Contains('\n', StringComparison.Ordinal));
        Assert.AreEqual(BootSector.DiskErrorText, text);
    }

    /// <summary>Boots the image until COM1 shows <paramref name="lines"/> lines; returns them parsed as hex.</summary>
    private static uint[] Boot(byte[] image, int lines)
    {
        string text = BootText(image, until: s => s.Count(c => c == '\n') >= lines);
        string[] complete = text.Split('\n')[..lines];
        foreach (string line in complete)
        {
            Assert.MatchesRegex("^[0-9a-f]{8}$", line, "eight lowercase hex digits per line");
        }

        return complete.Select(l => uint.Parse(l, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture)).ToArray();
    }

    /// <summary>Runs QEMU on the image, serial to a file, until <paramref name="until"/> holds for the file's text.</summary>
    private static string BootText(byte[] image, Func<string, bool> until)
    {
        string qemu = QemuRequirement.Require();
        string dir = Directory.CreateTempSubdirectory("migratekit-boot-").FullName;
        try
        {
            string imagePath = Path.Combine(dir, "boot.img");
            string serialPath = Path.Combine(dir, "serial.txt");
            File.WriteAllBytes(imagePath, image);
            var psi = new ProcessStartInfo(qemu) { UseShellExecute = false, RedirectStandardError = true, RedirectStandardOutput = true };
            foreach (string arg in new[]
            {
                "-accel", File.Exists("/dev/kvm") ? "kvm" : "tcg",
                "-nodefaults", "-no-reboot", "-display", "none", "-m", "256",
                "-serial", "file:" + serialPath,
                "-drive", $"file={imagePath},format=raw,if=ide",
            })
            {
                psi.ArgumentList.Add(arg);
            }

            using Process process = Process.Start(psi)!;
            try
            {
                var clock = Stopwatch.StartNew();
                string text = string.Empty;
                while (clock.Elapsed < Timeout)
                {
                    text = File.Exists(serialPath) ? ReadShared(serialPath) : string.Empty;
                    if (until(text))
                    {
                        return text;
                    }

                    if (process.HasExited)
                    {
                        Assert.Fail($"QEMU exited with {process.ExitCode} (a triple fault ends it with -no-reboot): {process.StandardError.ReadToEnd()}; serial: \"{text}\"");
                    }

                    Thread.Sleep(20);
                }

                Assert.Fail($"QEMU did not print what was expected within {Timeout.TotalSeconds} s; serial: \"{text}\"");
                return text;
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }

                process.WaitForExit();
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static string ReadShared(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
