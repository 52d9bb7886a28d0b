using System;
using System.CommandLine;
using System.IO;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using MigrateKit.Transport;

namespace MigrateKit.Cli;

/// <summary>
/// The TLS options of <c>send</c> and <c>receive</c> (<c>--tls-cert</c>, <c>--tls-key</c>,
/// <c>--tls-ca</c>, <c>--tls-allow</c>, <c>--insecure</c>) and the <c>certs create</c> command.
/// </summary>
internal sealed class TlsCommands
{
    private const string CreateHint = "make trial ones with 'migratekit certs create DIR'";

    internal Option<string?> Certificate { get; } = new("--tls-cert") { Description = "This side's certificate (PEM). With --tls-key and --tls-ca, TCP runs mutual TLS 1.3.", HelpName = "PEM" };
    internal Option<string?> Key { get; } = new("--tls-key") { Description = "The private key of --tls-cert (PEM).", HelpName = "PEM" };
    internal Option<string?> Authority { get; } = new("--tls-ca") { Description = "The CA certificate (PEM) the peer's certificate must be issued by; the only CA trusted.", HelpName = "PEM" };
    internal Option<string[]> Allow { get; } = new("--tls-allow") { Description = "A name the peer's certificate must carry (DNS name or common name); repeat for several. The default accepts any certificate the CA issued.", HelpName = "NAME" };
    internal Option<bool> Insecure { get; } = new("--insecure") { Description = "Use plain TCP without TLS: anyone on the path reads guest memory and can change it. 'receive' then listens on a loopback address only." };

    internal void AddTo(Command command)
    {
        command.Options.Add(Certificate);
        command.Options.Add(Key);
        command.Options.Add(Authority);
        command.Options.Add(Allow);
        command.Options.Add(Insecure);
    }

    /// <summary>
    /// The TLS options for <paramref name="address"/>, or null for plain text when that is allowed:
    /// a Unix socket, or TCP with an explicit <c>--insecure</c> (listening: on a loopback address only).
    /// </summary>
    /// <exception cref="FormatException">A usage error (the address's shape included), naming the option and the fix.</exception>
    internal MigrationTlsOptions? Read(ParseResult parse, string address, bool listening)
    {
        try
        {
            // The address's shape first: "udp:…" is no more TCP than unix: is.
            _ = MigrationConnector.NormalizeAddress(address);
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"{(listening ? "--listen" : "--to")}: {CliInput.WithoutParameterName(ex)}", ex);
        }

        string? certificate = parse.GetValue(Certificate);
        string? key = parse.GetValue(Key);
        string? authority = parse.GetValue(Authority);
        string[] allowed = parse.GetValue(Allow) ?? [];
        bool insecure = parse.GetValue(Insecure);
        bool unix = address.StartsWith("unix:", StringComparison.Ordinal);
        if (certificate is null && key is null && authority is null)
        {
            if (allowed.Length > 0)
            {
                throw new FormatException("--tls-allow needs --tls-cert, --tls-key and --tls-ca.");
            }

            if (!unix && !insecure)
            {
                throw new FormatException($"{address} is TCP: give --tls-cert, --tls-key and --tls-ca ({CreateHint}), or --insecure to send guest memory in plain text.");
            }

            if (listening && insecure && !unix && !IsLoopback(address))
            {
                throw new FormatException($"--insecure listens only on a loopback address (got {address}): use --listen tcp:127.0.0.1:PORT, or give --tls-cert, --tls-key and --tls-ca ({CreateHint}).");
            }

            return null;
        }

        if (insecure)
        {
            throw new FormatException("--insecure and --tls-cert/--tls-key/--tls-ca exclude each other: drop --insecure to use TLS.");
        }

        if (certificate is null || key is null || authority is null)
        {
            string missing = certificate is null ? "--tls-cert" : key is null ? "--tls-key" : "--tls-ca";
            throw new FormatException($"--tls-cert, --tls-key and --tls-ca go together: {missing} is missing.");
        }

        if (unix)
        {
            throw new FormatException($"{address} is a Unix socket, which is never encrypted: use a tcp: address with the --tls options.");
        }

        try
        {
            MigrationTlsOptions tls = MigrationTlsOptions.FromPemFiles(certificate, key, authority, allowed);
            tls.Validate();
            return tls;
        }
        catch (ArgumentException ex)
        {
            throw new FormatException($"--tls-cert/--tls-key/--tls-ca: {CliInput.WithoutParameterName(ex)}", ex);
        }
    }

    /// <summary>The <c>certs</c> command with its <c>create</c> subcommand.</summary>
    internal static Command Create()
    {
        var directory = new Argument<string>("DIR") { Description = "Where to write the files (created if missing; existing files are never overwritten)." };
        var days = new Option<int>("--days") { Description = "How many days the certificates are valid.", DefaultValueFactory = _ => 30 };
        var create = new Command("create", "Make a CA and a 'source' and a 'destination' certificate signed by it, for trying mutual TLS out " +
            "(a deployment issues certificates from its own PKI). Writes ca.pem, ca-key.pem, source.pem, source-key.pem, destination.pem and " +
            "destination-key.pem; the certificates also name 'localhost'. Keys are readable by their owner only.\n" +
            "Example: migratekit certs create ./certs\n" +
            "  then: migratekit receive --listen tcp:0.0.0.0:7000 --tls-cert certs/destination.pem --tls-key certs/destination-key.pem --tls-ca certs/ca.pem --tls-allow source\n" +
            "        migratekit send --to tcp:HOST:7000 --tls-cert certs/source.pem --tls-key certs/source-key.pem --tls-ca certs/ca.pem --tls-allow destination");
        create.Arguments.Add(directory);
        create.Options.Add(days);
        create.SetAction(parse =>
        {
            int valid = parse.GetValue(days);
            if (valid is < 1 or > 3650)
            {
                Console.Error.WriteLine($"migratekit certs create: --days {valid}: use 1 to 3650.");
                return 2;
            }

            try
            {
                foreach (string path in MigrationTlsCertificates.WriteTrial(parse.GetValue(directory)!, TimeSpan.FromDays(valid)))
                {
                    Console.WriteLine(path);
                }

                return 0;
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                Console.Error.WriteLine($"migratekit certs create: {ex.Message}");
                return 4;
            }
            catch (ArgumentException)
            {
                Console.Error.WriteLine("migratekit certs create: DIR is empty: name the directory to write the files to.");
                return 2;
            }
        });
        var command = new Command("certs", "Certificates for mutual TLS between 'send' and 'receive'.\nExample: migratekit certs create ./certs");
        command.Subcommands.Add(create);
        return command;
    }

    /// <summary>A CA and both sides' options, made in memory for <c>demo --tls</c>.</summary>
    internal static (MigrationTlsOptions Source, MigrationTlsOptions Destination) Throwaway()
    {
        DateTimeOffset now = DateTimeOffset.UtcNow;
        X509Certificate2 authority = MigrationTlsCertificates.CreateAuthority("migratekit demo CA", now.AddMinutes(-5), now.AddDays(1));
        MigrationTlsOptions For(string name, string peer) => new()
        {
            Certificate = MigrationTlsCertificates.CreateIssued(authority, name, now.AddMinutes(-5), now.AddDays(1)),
            CertificateAuthority = authority,
            AllowedNames = [peer],
        };
        return (For("source", "destination"), For("destination", "source"));
    }

    private static bool IsLoopback(string address)
    {
        string rest = address.StartsWith("tcp:", StringComparison.Ordinal) ? address[4..] : address;
        int colon = rest.LastIndexOf(':');
        string host = (colon > 0 ? rest[..colon] : rest).Trim('[', ']');
        return host.Equals("localhost", StringComparison.OrdinalIgnoreCase) || (IPAddress.TryParse(host, out IPAddress? ip) && IPAddress.IsLoopback(ip));
    }
}
