using System;
using System.Collections.Generic;
using System.CommandLine;
using System.CommandLine.Help;
using System.IO;
using System.Net.Sockets;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Threading;
using System.Threading.Tasks;
using MigrateKit.Kvm;
using MigrateKit.Memory;
using MigrateKit.Migration;
using MigrateKit.Transport;
using MigrateKit.Vmm;

namespace MigrateKit.Cli;

/// <summary>The <c>migratekit</c> command line.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        Output.HonourNoColor(Environment.GetEnvironmentVariable("NO_COLOR"));
        Output.WidenRedirected(Console.IsOutputRedirected, Environment.GetEnvironmentVariable("COLUMNS"));
        // A plain command named for the tool: RootCommand takes its name from the assembly
        // (MigrateKit.Cli), which would put the wrong name in every usage line.
        var root = new Command("migratekit", "migratekit: live migration of KVM guests with dirty-page tracking, hot-page deferral and downtime forecasts.\n" +
            "Exit codes: 0 completed, 2 usage error, 3 aborted by policy (the source keeps running), 4 failed, 5 outcome unknown (Commit sent, no answer: the source stays paused; see 'recover'), " +
            "130 (SIGINT, Ctrl-C) or 143 (SIGTERM) interrupted: the first signal cancels the command (a migration before its commit keeps the source running), a second ends the process at once.\n" +
            "Example: migratekit demo --memory 1GiB --workload sweep --hot 99MiB --bandwidth 100MiB/s --max-downtime 300ms");
        root.Options.Add(new HelpOption());
        root.Options.Add(new VersionOption());
        root.Subcommands.Add(VersionCommand());
        root.Subcommands.Add(DoctorCommand.Create());
        root.Subcommands.Add(DemoCommand());
        root.Subcommands.Add(PlanCommand.Create());
        root.Subcommands.Add(SendCommand());
        root.Subcommands.Add(ReceiveCommand());
        root.Subcommands.Add(RecoverCommand.Create());
        root.Subcommands.Add(TlsCommands.Create());
        root.Subcommands.Add(LibvirtCommands.Create());
        root.Subcommands.Add(ReportCommands.Create());
        root.Subcommands.Add(BenchCommands.Create());
        foreach (Command command in CompletionCommand.Create(root))
        {
            root.Subcommands.Add(command);
        }

        ParseResult parsed = root.Parse(args);
        if (parsed.Errors.Count > 0)
        {
            foreach (var error in parsed.Errors)
            {
                Console.Error.WriteLine(error.Message);
            }

            Console.Error.WriteLine("Try 'migratekit --help'.");
            return 2;
        }

        return Run(parsed);
    }

    /// <summary>
    /// Runs the command. The first SIGINT (Ctrl-C) or SIGTERM cancels its token: a migration ends
    /// before its commit with the source running (a libvirt job is aborted), a bench removes what
    /// it made, and the command ends with 130 (143 for SIGTERM) unless it had already completed.
    /// A second signal ends the process at once, as if none had been handled.
    /// </summary>
    private static int Run(ParseResult parsed)
    {
        // Not disposed: a signal may still be handled while Main returns.
        var interrupted = new CancellationTokenSource();
        int signalExit = 0;
        void Interrupt(PosixSignalContext context)
        {
            if (Interlocked.CompareExchange(ref signalExit, context.Signal == PosixSignal.SIGTERM ? 143 : 130, 0) != 0)
            {
                return;
            }

            context.Cancel = true;
            Console.Error.WriteLine($"migratekit: {(context.Signal == PosixSignal.SIGTERM ? "terminated" : "interrupted")}; stopping (a second signal ends the process at once)");

            // The token's callbacks run on the pool, not on the thread that handles signals.
            _ = interrupted.CancelAsync();
        }

        using PosixSignalRegistration interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupt);
        using PosixSignalRegistration terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupt);

        // The signals are handled here, not by System.CommandLine, whose handler gives up on the
        // command after a timeout and ignores a second signal; its exception handler would drop
        // what a cancelled migration says about its outcome.
        var invocation = new InvocationConfiguration { ProcessTerminationTimeout = null, EnableDefaultExceptionHandler = false };
        int exit;
        try
        {
            exit = parsed.InvokeAsync(invocation, interrupted.Token).GetAwaiter().GetResult();
        }
        catch (OperationCanceledException ex) when (interrupted.IsCancellationRequested)
        {
            // A cancellation says more than "cancelled" only when it matters: a migration whose
            // Commit was sent and not answered, whose destination may run the VM.
            bool plain = ex.Message == new OperationCanceledException().Message || ex.Message == new TaskCanceledException().Message;
            Console.Error.WriteLine($"migratekit: {(plain ? "stopped before the command completed" : ex.Message)}");
            exit = 1;
        }
        catch (Exception ex)
        {
            Console.Error.WriteLine($"migratekit: unexpected error: {ex}");
            exit = 1;
        }

        int signalled = Volatile.Read(ref signalExit);
        return signalled != 0 && exit != 0 ? signalled : exit;
    }

    private static Command VersionCommand()
    {
        var command = new Command("version", "Print the MigrateKit version and what this host's KVM offers.\nExample: migratekit version");
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

            Console.WriteLine(LibvirtSharp.Libvirt.IsAvailable ? $"libvirt: {LibvirtSharp.Libvirt.LibraryVersion}" : "libvirt: libvirt.so.0 not found");

            return 0;
        });
        return command;
    }

    /// <summary>The options that describe a source VM and its migration.</summary>
    internal sealed class SourceOptions
    {
        internal Option<string> Memory { get; } = new("--memory") { Description = "Guest memory, e.g. 1GiB.", DefaultValueFactory = _ => "1GiB" };
        internal Option<string> Workload { get; } = new("--workload") { Description = "Guest program: sweep, hotcold, random, verify, fill, phased (a quarter of --hot for the first passes, then all of it) or bursty (bursts over --hot between quiet stretches).", DefaultValueFactory = _ => "verify" };
        internal Option<string> Hot { get; } = new("--hot") { Description = "Size of the set the workload rewrites, e.g. 99MiB; by default 64 MiB, or half the memory above its first MiB where that is less.", DefaultValueFactory = _ => "64MiB" };
        internal Option<string> Bandwidth { get; } = new("--bandwidth") { Description = "Bandwidth limit, e.g. 100MiB/s, or 'unlimited'.", DefaultValueFactory = _ => "unlimited" };
        internal Option<string> MaxDowntime { get; } = new("--max-downtime") { Description = "Downtime limit, e.g. 300ms.", DefaultValueFactory = _ => "300ms" };
        internal Option<string> Tracker { get; } = new("--tracker") { Description = "MicroVm dirty tracking: bitmap (KVM_GET_DIRTY_LOG with manual protect) or ring. A HostVm always uses userfaultfd write-protection.", DefaultValueFactory = _ => "bitmap" };
        internal Option<string> Vm { get; } = new("--vm") { Description = "The VM to migrate: microvm (KVM), hostvm (guest writes by a host thread, tracked with userfaultfd write-protection; no KVM needed) or auto (microvm when /dev/kvm can be opened).", DefaultValueFactory = _ => "auto" };
        internal Option<double> Pace { get; } = new("--pace") { Description = "Guest page writes per second (0 = as fast as it can). The default for a hostvm, 25000, is the rate a MicroVm guest reaches on the reference machine; a microvm runs unpaced by default.", DefaultValueFactory = _ => -1 };
        internal EncodingOptions Encodings { get; } = new();
        internal Option<bool> Json { get; } = new("--json") { Description = "Print exactly one JSON object and nothing else on stdout." };
        internal Option<bool> Verbose { get; } = new("--verbose") { Description = "Log what the engine and the receiver measure and decide to stderr." };
        internal Option<bool> Metrics { get; } = new("--metrics") { Description = "Listen to the MigrateKit meter during the run and print every instrument at the end (to stderr with --json)." };
        internal Option<string?> Report { get; } = ReportCommands.CreateOption();
        internal CalibrationStoreOptions CalibrationStore { get; } = new("the engine's past switchovers, which correct the downtime forecast");

        internal void AddTo(Command command)
        {
            command.Options.Add(Memory);
            command.Options.Add(Workload);
            command.Options.Add(Hot);
            command.Options.Add(Bandwidth);
            command.Options.Add(MaxDowntime);
            command.Options.Add(Tracker);
            command.Options.Add(Vm);
            command.Options.Add(Pace);
            Encodings.AddTo(command);
            command.Options.Add(Json);
            command.Options.Add(Verbose);
            command.Options.Add(Metrics);
            command.Options.Add(Report);
            CalibrationStore.AddTo(command);
        }

        internal SourceSettings Read(ParseResult p)
        {
            ReportCommands.Check(p.GetValue(Report));
            string tracker = p.GetValue(Tracker)!;
            if (tracker is not ("bitmap" or "ring"))
            {
                throw new FormatException($"--tracker '{tracker}': use bitmap or ring.");
            }

            string workload = p.GetValue(Workload)!;
            if (Array.IndexOf(Workloads.Names, workload) < 0)
            {
                throw new FormatException($"--workload '{workload}': use {string.Join(", ", Workloads.Names)}.");
            }

            ulong memory = CliInput.Parse(p, Memory, Units.ParseBytes);
            if (memory < (4UL << 20) || memory % GuestMemoryLayout.PageSize != 0 || memory > (3UL << 30))
            {
                throw new FormatException($"--memory {p.GetValue(Memory)}: the VM has 4 MiB to 3 GiB of memory, in whole pages.");
            }

            string vm = p.GetValue(Vm)!;
            if (vm is not ("auto" or "microvm" or "hostvm"))
            {
                throw new FormatException($"--vm '{vm}': use auto, microvm or hostvm.");
            }

            vm = VmKind.Resolve(vm);
            double pace = p.GetValue(Pace);
            if (double.IsNaN(pace) || (pace < 0 && pace != -1))
            {
                throw new FormatException($"--pace {pace}: use 0 (unpaced) or a positive number of pages per second.");
            }

            pace = pace == -1 ? (vm == "hostvm" ? 25_000 : 0) : pace;
            ulong hot = p.GetResult(Hot) is { Implicit: false } ? CliInput.Parse(p, Hot, Units.ParseBytes) : Workloads.DefaultHot(memory);
            try
            {
                // Checked here so a bad combination is a usage error before anything starts.
                Workloads.Check(workload, memory, hot);
            }
            catch (ArgumentException ex)
            {
                throw new FormatException(ex.Message, ex);
            }

            var settings = new SourceSettings
            {
                Memory = memory,
                Workload = workload,
                Hot = hot,
                Bandwidth = CliInput.Parse(p, Bandwidth, Units.ParseRate),
                MaxDowntime = CliInput.Parse(p, MaxDowntime, Units.ParseDuration),
                Tracker = tracker,
                Vm = vm,
                Pace = pace,
                Verbose = p.GetValue(Verbose),
                History = CalibrationStore.History(p, p.GetValue(Verbose)),
                Encodings = Encodings.Read(p),
                SentPageCache = Encodings.ReadCache(p),
            };
            CliInput.Validate(settings.MigrationOptions().Validate, new Dictionary<string, Option>
            {
                [nameof(MigrationOptions.MaxDowntime)] = MaxDowntime,
                [nameof(MigrationOptions.BandwidthLimit)] = Bandwidth,
                [nameof(MigrationOptions.SentPageCacheBytes)] = Encodings.SentPageCache,
            });
            return settings;
        }
    }

    private static Command DemoCommand()
    {
        var options = new SourceOptions();
        var command = new Command("demo", "Migrate a running VM to a new one in this process over loopback TCP, with a live table of rounds.\n" +
            "Example: migratekit demo --memory 1GiB --workload sweep --hot 99MiB --bandwidth 100MiB/s --max-downtime 300ms");
        options.AddTo(command);
        var tls = new Option<bool>("--tls") { Description = "Run the loopback connection over mutual TLS 1.3 with throwaway certificates, to see what TLS costs." };
        command.Options.Add(tls);
        command.SetAction(async (parse, ct) => await RunAsync(parse, options, (s, status, progress) =>
            MigrationRunner.DemoAsync(s, status, progress, parse.GetValue(tls) ? TlsCommands.Throwaway() : null, ct)).ConfigureAwait(false));
        return command;
    }

    private static Command SendCommand()
    {
        var options = new SourceOptions();
        var to = new Option<string>("--to") { Description = "Receiver address: tcp:HOST:PORT or unix:PATH.", Required = true };
        var tlsOptions = new TlsCommands();
        var command = new Command("send", "Start a VM running a workload and migrate it to a 'migratekit receive'. TCP runs mutual TLS with the --tls options; " +
            "plain TCP needs --insecure (a 'receive' with --insecure listens on a loopback address only).\n" +
            "Example: migratekit send --to tcp:127.0.0.1:7000 --insecure --workload verify --memory 1GiB");
        options.AddTo(command);
        command.Options.Add(to);
        tlsOptions.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            MigrationTlsOptions? tls;
            try
            {
                tls = tlsOptions.Read(parse, parse.GetValue(to)!, listening: false);
            }
            catch (FormatException ex)
            {
                Console.Error.WriteLine($"migratekit send: {ex.Message}");
                return 2;
            }

            return await RunAsync(parse, options, (s, status, progress) => SendAsync(parse.GetValue(to)!, tls, s, status, progress, ct)).ConfigureAwait(false);
        });
        return command;
    }

    private static async Task<RunOutcome> SendAsync(string to, MigrationTlsOptions? tls, SourceSettings s, LiveStatus status, IProgress<MigrationProgress>? progress, CancellationToken ct)
    {
        using IWorkloadVm source = MigrationRunner.StartSource(s, status, ct);
        status.Set($"connecting to {to}{(tls is null ? "" : " (mutual TLS)")}");
        // The first connection is opened here, so an unreachable address is the command's error; the
        // engine opens the later ones itself when it reconnects after a lost link.
        IMigrationConnection? first = await MigrationConnector.ConnectAsync(to, tls, null, ct).ConfigureAwait(false);
        MigrationReport report;
        try
        {
            report = await MigrationRunner.SendAsync(source, token => Interlocked.Exchange(ref first, null) is { } opened ? Task.FromResult(opened) : MigrationConnector.ConnectAsync(to, tls, null, token), s, status, progress, ct).ConfigureAwait(false);
        }
        finally
        {
            if (Interlocked.Exchange(ref first, null) is { } unused)
            {
                await unused.DisposeAsync().ConfigureAwait(false);
            }
        }

        if (tls is null && !to.StartsWith("unix:", StringComparison.Ordinal) && report.FailedPhase == MigrationPhase.Handshake && LinkDropped(report.Error))
        {
            // A TLS listener drops a plain Hello at once; the source only sees the link go.
            Console.Error.WriteLine("migratekit send: the destination dropped the connection before answering the Hello: if it runs mutual TLS, give --tls-cert, --tls-key and --tls-ca instead of --insecure.");
        }
        else if (tls is not null && report.FailedPhase == MigrationPhase.Handshake && LinkDropped(report.Error))
        {
            // TLS 1.3 lets the client finish its side before the server has checked the client's
            // certificate: the destination's refusal reaches this side only as a dropped link.
            Console.Error.WriteLine("migratekit send: the destination dropped the connection before answering the Hello: it may have refused this source's certificate (signed by another CA, or a name its --tls-allow does not list); its output says why.");
        }

        bool verified = report.Status == MigrationStatus.Completed && report.DigestsMatched == true && report.SourceMemoryVerified != false;
        return new RunOutcome(report, verified, verified ? "digests matched; source memory equals what was sent" : report.Reason, 0, VmKind.Of(source));
    }

    /// <summary>Whether the link itself failed (reset, closed, cut), not the destination's answer.</summary>
    private static bool LinkDropped(Exception? error)
    {
        for (Exception? e = error; e is not null; e = e.InnerException)
        {
            if (e is IOException or SocketException or MigrationProtocolException { StreamCut: true })
            {
                return true;
            }
        }

        return false;
    }

    private static Command ReceiveCommand()
    {
        var listen = new Option<string>("--listen") { Description = "Address to listen on: tcp:HOST:PORT or unix:PATH.", Required = true };
        var passes = new Option<int>("--verify-passes") { Description = "After resuming, wait for this many passes of a self-checking guest.", DefaultValueFactory = _ => 3 };
        var verbose = new Option<bool>("--verbose") { Description = "Log what the receiver sees and does to stderr." };
        Option<string?> metricsListen = MetricsEndpoint.Option();
        var once = new Option<bool>("--once") { Description = "Stop after the first source, even one that failed or was refused (by default receive keeps listening until a migration completes)." };
        var limits = new ReceiveLimits();
        var tlsOptions = new TlsCommands();
        var command = new Command("receive", "Receive a migration into a new VM of the kind --vm names, resume it and check the guest. " +
            "TCP runs mutual TLS with the --tls options; plain TCP needs --insecure and a loopback address. " +
            "A source announcing more than --max-memory, or another shape than --expect-memory/--expect-vcpus, is refused before anything is allocated; " +
            "receive keeps listening after a source that fails or is refused, until one migration completes (or --once).\n" +
            "Example: migratekit receive --listen tcp:127.0.0.1:7000 --insecure\n" +
            "Example: migratekit receive --listen unix:/run/migratekit.sock --vm hostvm --max-memory 8GiB --expect-memory 1GiB --expect-vcpus 1");
        command.Options.Add(listen);
        command.Options.Add(passes);
        command.Options.Add(verbose);
        command.Options.Add(once);
        command.Options.Add(metricsListen);
        limits.AddTo(command);
        tlsOptions.AddTo(command);
        command.SetAction(async (parse, ct) =>
        {
            try
            {
                if (parse.GetValue(passes) < 0)
                {
                    throw new FormatException($"--verify-passes {parse.GetValue(passes)}: use 0 (no wait) or more.");
                }

                (string vmKind, MigrationReceiverOptions accepted) = limits.Read(parse);
                MigrationTlsOptions? tls = tlsOptions.Read(parse, parse.GetValue(listen)!, listening: true);
                using MetricsEndpoint? metrics = MetricsEndpoint.StartIf(MetricsEndpoint.Parse(parse.GetValue(metricsListen)));
                await using MigrationListener listener = MigrationListener.Listen(parse.GetValue(listen)!, tls, null);
                Console.Error.WriteLine($"listening on {listener.LocalAddress}{(listener.IsTls ? " (mutual TLS)" : "")}");
                bool verboseLogs = parse.GetValue(verbose);
                MigrationReceiver receiver = MigrationRunner.Receiver(vmKind, accepted, verboseLogs);
                receiver.PeerRefused += (_, refused) =>
                {
                    // A peer that fails the handshake (no or a wrong certificate, not TLS at all), or that sends no Hello or junk while others are connected, is refused, not served.
                    Console.Error.WriteLine($"refused a peer{(refused.Address is { } from ? $" ({from})" : "")}: {refused.Error.Message}");
                    Console.Error.WriteLine($"still listening on {listener.LocalAddress}");
                };

                async Task<ReceiveResult> Receive(Spectre.Console.StatusContext? status)
                {
                    // Accepts the source's connections (and its reconnections after a lost link) and answers session queries.
                    return await receiver.ReceiveAsync(listener, ct).ConfigureAwait(false);
                }

                while (true)
                {
                    // A spinner while waiting and receiving, unless logs go to the same terminal.
                    ReceiveResult result = verboseLogs
                        ? await Receive(null).ConfigureAwait(false)
                        : await Spectre.Console.AnsiConsole.Status().StartAsync($"waiting for a source on {Spectre.Console.Markup.Escape(listener.LocalAddress)}", Receive).ConfigureAwait(false);

                    using IWorkloadVm? vm = result.Target as IWorkloadVm;
                    if (result.Status != MigrationStatus.Completed || vm is null)
                    {
                        Console.Error.WriteLine($"migration from {result.SourceAddress ?? "a source"} {result.Status.ToString().ToLowerInvariant()}: {result.Reason}");
                        if (parse.GetValue(once))
                        {
                            return Output.ExitCode(result.Status);
                        }

                        // A refused or failed peer must not end the service for the next one.
                        Console.Error.WriteLine($"still listening on {listener.LocalAddress}");
                        continue;
                    }

                    return CheckReceived(result, vm, verboseLogs, parse.GetValue(passes));
                }
            }
            catch (Exception ex) when (ex is FormatException or ArgumentException or System.IO.IOException)
            {
                Console.Error.WriteLine($"migratekit receive: {ex.Message}");
                return ex is System.IO.IOException ? 4 : 2;
            }
        });
        return command;
    }

    /// <summary>Prints what arrived and waits for the resumed guest's self-checks: 0 when they pass, 4 otherwise.</summary>
    private static int CheckReceived(ReceiveResult result, IWorkloadVm vm, bool verboseLogs, int wanted)
    {
        Console.WriteLine($"received {result.PagesReceived} pages ({result.ZeroPagesReceived} zero) in {result.Rounds} rounds; resumed in {result.ResumeDuration?.TotalMilliseconds:F2} ms");
        (bool ok, string detail, _) = verboseLogs
            ? MigrationRunner.CheckDestination(vm, true, wanted)
            : Spectre.Console.AnsiConsole.Status().Start($"checking the guest: waiting for {wanted} passes", _ => MigrationRunner.CheckDestination(vm, true, wanted));
        Console.WriteLine(detail);
        return ok ? 0 : 4;
    }

    private static async Task<int> RunAsync(ParseResult parse, SourceOptions options, Func<SourceSettings, LiveStatus, IProgress<MigrationProgress>?, Task<RunOutcome>> run)
    {
        SourceSettings settings;
        try
        {
            settings = options.Read(parse);
        }
        catch (FormatException ex)
        {
            Console.Error.WriteLine($"migratekit: {ex.Message}");
            return 2;
        }

        return await Output.RunMigrationAsync(parse.GetValue(options.Json), settings.Verbose, parse.GetValue(options.Metrics), parse.GetValue(options.Report),
            (status, progress) => run(settings, status, progress)).ConfigureAwait(false);
    }
}
