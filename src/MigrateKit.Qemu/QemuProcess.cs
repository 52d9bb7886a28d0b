using System;
using System.Collections.Generic;
using System.ComponentModel;
using System.Diagnostics;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace MigrateKit.Qemu;

/// <summary>
/// How to start a <see cref="QemuProcess"/>.
/// </summary>
public sealed record QemuProcessOptions
{
    /// <summary>The QEMU executable.</summary>
    /// <value>The default is <see langword="null"/>: <c>qemu-system-x86_64</c> found on <c>PATH</c>.</value>
    public string? QemuPath { get; init; }

    /// <summary>Guest memory in MiB (<c>-m</c>).</summary>
    /// <value>The default is 64.</value>
    public int MemoryMiB { get; init; } = 64;

    /// <summary>The accelerator (<c>-accel</c>): <c>kvm</c> or <c>tcg</c>.</summary>
    /// <value>The default is <see langword="null"/>: <c>kvm</c> when /dev/kvm exists, <c>tcg</c> otherwise.</value>
    public string? Accelerator { get; init; }

    /// <summary>A raw disk image attached as the first IDE disk (<c>-drive file=…,format=raw,if=ide</c>).</summary>
    /// <value>The default is <see langword="null"/>: no disk.</value>
    public string? DiskImagePath { get; init; }

    /// <summary>A local TCP port to wait on for an incoming migration (<c>-incoming tcp:127.0.0.1:PORT</c>).</summary>
    /// <value>The default is <see langword="null"/>: the guest starts running at once.</value>
    public int? IncomingPort { get; init; }

    /// <summary>
    /// Files loaded into guest memory at reset, before the firmware runs
    /// (<c>-device loader,file=…,addr=…,force-raw=on</c>): a guest whose memory starts with known content.
    /// </summary>
    /// <value>The default is empty: none.</value>
    public IReadOnlyList<QemuMemoryFile> MemoryFiles { get; init; } = [];

    /// <summary>How long QEMU may take to open its QMP socket and answer the handshake.</summary>
    /// <value>The default is 30 seconds.</value>
    public TimeSpan StartTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Checks the options, naming the first invalid one.</summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    public void Validate()
    {
        if (MemoryMiB <= 0)
        {
            throw new ArgumentException($"{nameof(MemoryMiB)} must be positive, not {MemoryMiB}.", nameof(MemoryMiB));
        }

        if (Accelerator is not (null or "kvm" or "tcg"))
        {
            throw new ArgumentException($"{nameof(Accelerator)} must be kvm or tcg, not '{Accelerator}'.", nameof(Accelerator));
        }

        if (IncomingPort is int port && port is <= 0 or > 65535)
        {
            throw new ArgumentException($"{nameof(IncomingPort)} must be a TCP port (1-65535), not {port}.", nameof(IncomingPort));
        }

        if (StartTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException($"{nameof(StartTimeout)} must be positive, not {StartTimeout}.", nameof(StartTimeout));
        }

        foreach (QemuMemoryFile file in MemoryFiles ?? throw new ArgumentException($"{nameof(MemoryFiles)} must not be null.", nameof(MemoryFiles)))
        {
            // QEMU's option syntax splits on commas; a path with one would load another file or fail obscurely.
            if (string.IsNullOrEmpty(file.Path) || file.Path.Contains(','))
            {
                throw new ArgumentException($"{nameof(MemoryFiles)}: '{file.Path}' must be a non-empty path without commas.", nameof(MemoryFiles));
            }
        }
    }
}

/// <summary>
/// A <c>qemu-system-x86_64</c> process with a QMP socket, no devices but a serial port to a file
/// (and an optional disk), killed when disposed.
/// </summary>
public sealed class QemuProcess : IAsyncDisposable
{
    /// <summary>The executable name looked up on <c>PATH</c>.</summary>
    public const string ExecutableName = "qemu-system-x86_64";

    private const int StderrLimit = 64 * 1024;

    private readonly Process _process;
    private readonly string _directory;
    private readonly StringBuilder _stderr = new();
    private QmpClient? _qmp;
    private int _disposed;

    private QemuProcess(Process process, string directory, string arguments)
    {
        _process = process;
        _directory = directory;
        CommandLine = arguments;
    }

    /// <summary>The QMP client connected to this QEMU.</summary>
    public QmpClient Qmp => _qmp ?? throw new InvalidOperationException("QEMU has not finished starting.");

    /// <summary>The file the guest's COM1 is written to.</summary>
    public string SerialPath => Path.Combine(_directory, "serial.txt");

    /// <summary>The QMP socket path.</summary>
    public string QmpSocketPath => Path.Combine(_directory, "qmp.sock");

    /// <summary>The process id.</summary>
    public int ProcessId => _process.Id;

    /// <summary>The command line QEMU was started with.</summary>
    public string CommandLine { get; }

    /// <summary>Whether the process has exited.</summary>
    public bool HasExited => _process.HasExited;

    /// <summary>What QEMU wrote to stderr so far (the first 64 KiB).</summary>
    public string StandardError
    {
        get
        {
            lock (_stderr)
            {
                return _stderr.ToString();
            }
        }
    }

    /// <summary>Finds <c>qemu-system-x86_64</c> on <c>PATH</c>.</summary>
    /// <returns>Its full path, or <see langword="null"/> if it is not installed.</returns>
    public static string? FindOnPath() =>
        (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Select(dir => Path.Combine(dir, ExecutableName))
            .FirstOrDefault(File.Exists);

    /// <summary>QEMU's command line (without the executable) for <paramref name="options"/>, its files in <paramref name="directory"/>.</summary>
    internal static List<string> Arguments(QemuProcessOptions options, string directory)
    {
        string socket = Path.Combine(directory, "qmp.sock");
        var arguments = new List<string>
        {
            "-accel", options.Accelerator ?? (File.Exists("/dev/kvm") ? "kvm" : "tcg"),
            "-nodefaults", "-display", "none",
            "-m", options.MemoryMiB.ToString(CultureInfo.InvariantCulture),
            "-qmp", $"unix:{socket},server=on,wait=off",
            "-serial", "file:" + Path.Combine(directory, "serial.txt"),
        };
        if (options.DiskImagePath is string disk)
        {
            arguments.AddRange(["-drive", $"file={disk},format=raw,if=ide"]);
        }

        if (options.IncomingPort is int port)
        {
            arguments.AddRange(["-incoming", string.Create(CultureInfo.InvariantCulture, $"tcp:127.0.0.1:{port}")]);
        }

        foreach (QemuMemoryFile file in options.MemoryFiles)
        {
            arguments.AddRange(["-device", string.Create(CultureInfo.InvariantCulture, $"loader,file={file.Path},addr=0x{file.Address:x},force-raw=on")]);
        }

        return arguments;
    }

    /// <summary>
    /// Starts QEMU and connects to its QMP socket.
    /// </summary>
    /// <param name="options">How to start it.</param>
    /// <param name="ct">Cancels the start; the process is killed.</param>
    /// <returns>The running process with <see cref="Qmp"/> connected.</returns>
    /// <exception cref="ArgumentException">The options are invalid.</exception>
    /// <exception cref="FileNotFoundException">QEMU is not installed.</exception>
    /// <exception cref="IOException">QEMU exited before its QMP socket answered (the message carries its stderr).</exception>
    /// <exception cref="TimeoutException">The QMP socket did not answer within <see cref="QemuProcessOptions.StartTimeout"/>.</exception>
    public static async Task<QemuProcess> StartAsync(QemuProcessOptions options, CancellationToken ct = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        string qemu = options.QemuPath ?? FindOnPath()
            ?? throw new FileNotFoundException($"{ExecutableName} is not on PATH (Debian: qemu-system-x86).", ExecutableName);
        string directory = Directory.CreateTempSubdirectory("migratekit-qemu-").FullName;
        List<string> arguments = Arguments(options, directory);
        var psi = new ProcessStartInfo(qemu)
        {
            UseShellExecute = false,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
        };
        foreach (string argument in arguments)
        {
            psi.ArgumentList.Add(argument);
        }

        Process process;
        try
        {
            process = Process.Start(psi) ?? throw new IOException($"cannot start {qemu}");
        }
        catch (Win32Exception e)
        {
            Directory.Delete(directory, recursive: true);
            throw new IOException($"cannot start {qemu}: {e.Message}", e);
        }

        var result = new QemuProcess(process, directory, qemu + " " + string.Join(' ', arguments));
        try
        {
            process.ErrorDataReceived += result.OnStderr;
            process.OutputDataReceived += static (_, _) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            result._qmp = await result.ConnectAsync(options.StartTimeout, ct).ConfigureAwait(false);
            return result;
        }
        catch
        {
            await result.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Disconnects QMP, kills QEMU and deletes its socket and serial file.</summary>
    /// <returns>A task that completes when the process has exited.</returns>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        if (_qmp is not null)
        {
            await _qmp.DisposeAsync().ConfigureAwait(false);
        }

        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }

            using var wait = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await _process.WaitForExitAsync(wait.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or Win32Exception or OperationCanceledException)
        {
            // Already gone, or not reaped in time; nothing more can be done.
        }

        _process.Dispose();
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A file still held open; the temporary directory is left behind.
        }
    }

    private async Task<QmpClient> ConnectAsync(TimeSpan timeout, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            ct.ThrowIfCancellationRequested();
            if (_process.HasExited)
            {
                throw ExitedEarly();
            }

            TimeSpan left = timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"QEMU did not answer on its QMP socket {QmpSocketPath} within {timeout.TotalSeconds:0.###} s; stderr: {StandardError}");
            }

            if (File.Exists(QmpSocketPath))
            {
                try
                {
                    return await QmpClient.ConnectAsync(QmpSocketPath, left, ct).ConfigureAwait(false);
                }
                catch (IOException) when (!_process.HasExited)
                {
                    // The socket file exists before QEMU listens on it; try again.
                }
                catch (IOException e)
                {
                    throw ExitedEarly(e);
                }
            }

            await Task.Delay(TimeSpan.FromMilliseconds(20), ct).ConfigureAwait(false);
        }
    }

    private IOException ExitedEarly(Exception? inner = null)
    {
        _process.WaitForExit(); // Flushes the asynchronous stderr reader.
        return new IOException(
            $"QEMU exited with code {_process.ExitCode} before its QMP socket answered; stderr: {StandardError.Trim()}; command: {CommandLine}",
            inner);
    }

    private void OnStderr(object sender, DataReceivedEventArgs e)
    {
        if (e.Data is null)
        {
            return;
        }

        lock (_stderr)
        {
            if (_stderr.Length < StderrLimit)
            {
                _stderr.AppendLine(e.Data);
            }
        }
    }
}
