using System;
using System.Collections.Generic;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text.RegularExpressions;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Guests;

/// <summary>
/// Disassembles bytes with GNU objdump (binutils, which ./test.sh installs), so encodings are
/// checked against an independent decoder rather than against hand-copied bytes alone.
/// </summary>
internal static class Objdump
{
    private static readonly Lazy<string?> s_path = new(() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, "objdump"))
            .FirstOrDefault(File.Exists));

    /// <summary>
    /// The instructions in <c>[start, stop)</c> of <paramref name="code"/> in Intel syntax, one per
    /// element, whitespace collapsed (<c>"mov sp,0x7c00"</c>); skips the test when objdump is missing.
    /// </summary>
    /// <param name="code">The bytes.</param>
    /// <param name="machine"><c>i8086</c> for 16-bit code, <c>i386</c> for 32-bit code.</param>
    /// <param name="vma">The address of <c>code[0]</c>, so jump targets read as absolute addresses.</param>
    /// <param name="start">First offset to disassemble.</param>
    /// <param name="stop">One past the last offset.</param>
    internal static string[] Disassemble(byte[] code, string machine, ulong vma = 0, int start = 0, int? stop = null)
    {
        string? objdump = s_path.Value;
        if (objdump is null)
        {
            if (Environment.GetEnvironmentVariable("MIGRATEKIT_REQUIRE_OBJDUMP") == "1")
            {
                Assert.Fail("MIGRATEKIT_REQUIRE_OBJDUMP=1 but objdump (binutils) is not on PATH.");
            }

            Assert.Inconclusive("Skipped: objdump (binutils) is not installed (set MIGRATEKIT_REQUIRE_OBJDUMP=1 to make this a failure).");
            return [];
        }

        string file = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(file, code);
            var psi = new ProcessStartInfo(objdump)
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            foreach (string arg in new[]
            {
                "-D", "-b", "binary", "-m", machine, "-M", "intel",
                FormattableString.Invariant($"--adjust-vma=0x{vma:x}"),
                FormattableString.Invariant($"--start-address=0x{vma + (ulong)start:x}"),
                FormattableString.Invariant($"--stop-address=0x{vma + (ulong)(stop ?? code.Length):x}"),
                file,
            })
            {
                psi.ArgumentList.Add(arg);
            }

            using Process process = Process.Start(psi)!;
            string output = process.StandardOutput.ReadToEnd();
            string errors = process.StandardError.ReadToEnd();
            process.WaitForExit();
            Assert.AreEqual(0, process.ExitCode, $"objdump failed: {errors}");

            // "    7c00:\tfa                   \tcli"; long encodings continue on a line without text.
            var instructions = new List<string>();
            foreach (string line in output.Split('\n'))
            {
                string[] parts = line.Split('\t');
                if (parts.Length >= 3 && Regex.IsMatch(parts[0], @"^\s*[0-9a-f]+:$"))
                {
                    instructions.Add(Regex.Replace(string.Join(' ', parts[2..]).Trim(), @"\s+", " "));
                }
            }

            return instructions.ToArray();
        }
        finally
        {
            File.Delete(file);
        }
    }

    /// <summary>Formats an address the way objdump prints operands.</summary>
    internal static string Hex(ulong value) => "0x" + value.ToString("x", CultureInfo.InvariantCulture);
}
