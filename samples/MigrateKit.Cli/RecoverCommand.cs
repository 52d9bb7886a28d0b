using System;
using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Migration;
using MigrateKit.Transport;

namespace MigrateKit.Cli;

/// <summary>
/// <c>migratekit recover</c>: after a migration whose outcome is unknown (Commit sent, the answer
/// lost), asks the destination whether it started the VM, and optionally resolves it.
/// </summary>
internal static class RecoverCommand
{
    /// <summary>Exit code when the destination's answer leaves the outcome open (ready, receiving, or no record).</summary>
    internal const int Unresolved = 5;

    internal static Command Create()
    {
        var to = new Option<string>("--to") { Description = "The destination's address, where its 'migratekit receive' listens: tcp:HOST:PORT or unix:PATH.", Required = true };
        var session = new Option<string>("--session") { Description = "The session id from the source's report (32 hex digits).", Required = true, HelpName = "ID" };
        var commit = new Option<bool>("--commit") { Description = "Start the VM on the destination if it is ready and paused. Only when the source's copy is paused for good." };
        var abort = new Option<bool>("--abort") { Description = "Release the VM on the destination if it has not started, so the source can resume." };
        var json = new Option<bool>("--json") { Description = "Print the answer as one JSON object." };
        var tlsOptions = new TlsCommands();
        var command = new Command("recover", "Ask a destination what became of a migration whose outcome the source could not learn, and resolve it. " +
            "'started' means the VM runs there: discard the source. 'discarded' means it never ran there: resume the source. " +
            "Exit code 0 for those two answers, 5 when the outcome is still open.\n" +
            "Example: migratekit recover --to tcp:10.0.0.2:7000 --session 3f2a9c0d4b1e4f6a8c7d2e1f0a9b8c7d --tls-cert src.pem --tls-key src.key --tls-ca ca.pem");
        command.Options.Add(to);
        command.Options.Add(session);
        command.Options.Add(commit);
        command.Options.Add(abort);
        command.Options.Add(json);
        tlsOptions.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            string address = parse.GetValue(to)!;
            MigrationTlsOptions? tls;
            Guid id;
            SessionQueryAction action;
            try
            {
                tls = tlsOptions.Read(parse, address, listening: false);
                id = ParseSession(parse.GetValue(session)!);
                action = (parse.GetValue(commit), parse.GetValue(abort)) switch
                {
                    (true, true) => throw new FormatException("--commit and --abort exclude each other: commit starts the destination's copy, abort releases it."),
                    (true, false) => SessionQueryAction.Commit,
                    (false, true) => SessionQueryAction.Abort,
                    _ => SessionQueryAction.Ask,
                };
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit recover: {ex.Message}");
                return 2;
            }

            return await QueryAsync(address, tls, id, action, parse.GetValue(json), ct).ConfigureAwait(false);
        });
        return command;
    }

    /// <exception cref="FormatException">Not 32 hex digits (dashes allowed).</exception>
    internal static Guid ParseSession(string text) =>
        Guid.TryParse(text, CultureInfo.InvariantCulture, out Guid id) && id != Guid.Empty
            ? id
            : throw new FormatException($"--session: '{text}' is not a session id: give the 32 hex digits of the source's report (sessionId).");

    private static async Task<int> QueryAsync(string address, MigrationTlsOptions? tls, Guid id, SessionQueryAction action, bool json, CancellationToken ct)
    {
        SessionStatus status;
        try
        {
            await using IMigrationConnection connection = await MigrationConnector.ConnectAsync(address, tls, null, ct).ConfigureAwait(false);
            status = await MigrationRecovery.QueryAsync(connection, id, action, null, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is MigrationQueryException or MigrationConnectionException or MigrationProtocolException or MigrationTlsException or ArgumentException)
        {
            Console.Error.WriteLine($"migratekit recover: {ex.Message}");
            return 4;
        }

        string state = status.State.ToString().ToLowerInvariant();
        if (json)
        {
            Console.WriteLine(JsonSerializer.Serialize(new RecoverAnswer(id.ToString("N"), state, status.Message), CliJsonContext.Default.RecoverAnswer));
        }
        else
        {
            Console.WriteLine($"session {id:N}: {state}");
            Console.WriteLine(status.Message);
        }

        return status.State is DestinationSessionState.Started or DestinationSessionState.Discarded ? 0 : Unresolved;
    }
}

/// <summary>The JSON of <c>recover --json</c>.</summary>
/// <param name="SessionId">The session asked about.</param>
/// <param name="State">unknown, receiving, ready, started or discarded.</param>
/// <param name="Message">The destination's explanation.</param>
internal sealed record RecoverAnswer(string SessionId, string State, string Message);
