using System;
using Microsoft.Extensions.Logging;

namespace MigrateKit.Cli;

/// <summary>Writes library log messages to stderr (--verbose), so stdout stays the command's output.</summary>
internal sealed class StderrLogger<T>(LogLevel minimum) : ILogger<T>
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= minimum;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        if (!IsEnabled(logLevel))
        {
            return;
        }

        string line = $"{DateTime.Now:HH:mm:ss.fff} {logLevel.ToString().ToLowerInvariant()[..4]} {typeof(T).Name}: {formatter(state, exception)}";
        Console.Error.WriteLine(exception is null ? line : $"{line} ({exception.GetType().Name}: {exception.Message})");
    }
}

/// <summary>The loggers the commands hand to the libraries.</summary>
internal static class CliLogging
{
    /// <summary>A stderr logger from Debug up when <paramref name="verbose"/>; null (the library's NullLogger) otherwise.</summary>
    internal static ILogger<T>? For<T>(bool verbose) => verbose ? new StderrLogger<T>(LogLevel.Debug) : null;
}
