using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.Cli;

/// <summary>The address options of <c>send</c>, <c>receive</c> and <c>recover</c>, checked before TLS is reasoned about.</summary>
[TestClass]
public sealed class AddressOptionTests
{
    [TestMethod]
    [DataRow("send", "--to", "nope", "'nope' is not an address (use tcp:HOST:PORT, HOST:PORT or unix:PATH).")]
    [DataRow("receive", "--listen", "nope", "'nope' is not an address (use tcp:HOST:PORT, HOST:PORT or unix:PATH).")]
    [DataRow("recover", "--to", "nope", "'nope' is not an address (use tcp:HOST:PORT, HOST:PORT or unix:PATH).")]
    [DataRow("send", "--to", "udp:127.0.0.1:7000", "'udp:127.0.0.1:7000' has an unknown scheme 'udp:'")]
    [DataRow("receive", "--listen", "udp:127.0.0.1:7000", "'udp:127.0.0.1:7000' has an unknown scheme 'udp:'")]
    [DataRow("recover", "--to", "udp:127.0.0.1:7000", "'udp:127.0.0.1:7000' has an unknown scheme 'udp:'")]
    public void AMalformedAddress_IsAUsageErrorNamingIt_WithOrWithoutInsecure(string command, string option, string address, string message)
    {
        // They said "nope is TCP: give --tls-cert…" without --insecure; with it, send said "cannot
        // connect (HostNotFound)" for udp:, and recover exited 4 with a C# parameter name.
        string[] rest = command switch
        {
            "recover" => ["--session", "3f2a9c0d4b1e4f6a8c7d2e1f0a9b8c7d"],
            "send" => ["--vm", "hostvm", "--memory", "16MiB"],
            _ => ["--vm", "hostvm", "--once"],
        };

        foreach (string[] security in new[] { System.Array.Empty<string>(), ["--insecure"] })
        {
            (int exit, string stdout, string stderr) = CliProcess.Run([command, option, address, .. security, .. rest]);
            Assert.AreEqual(2, exit, $"{string.Join(' ', security)}: {stdout}\n{stderr}");
            StringAssert.StartsWith(stderr, $"migratekit {command}: {option}: {message}");
            Assert.IsFalse(stderr.Contains("Parameter", System.StringComparison.Ordinal), stderr);
        }
    }
}
