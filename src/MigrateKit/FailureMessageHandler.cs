using System.Runtime.CompilerServices;

namespace MigrateKit;

/// <summary>
/// The operation's description for <see cref="Errno.Check(int, ref FailureMessageHandler)"/> and
/// <c>KvmException.Check</c>: formatted only when the call failed, so the hot paths that check
/// every ioctl (harvests, <c>KVM_RUN</c>) allocate nothing when it succeeds.
/// </summary>
[InterpolatedStringHandler]
internal ref struct FailureMessageHandler
{
    private DefaultInterpolatedStringHandler _text;

    /// <summary>Formats only when <paramref name="result"/> is a failure (negative).</summary>
    public FailureMessageHandler(int literalLength, int formattedCount, int result, out bool shouldAppend)
    {
        shouldAppend = result < 0;
        _text = shouldAppend ? new DefaultInterpolatedStringHandler(literalLength, formattedCount) : default;
    }

    /// <summary>Appends literal text.</summary>
    public void AppendLiteral(string value) => _text.AppendLiteral(value);

    /// <summary>Appends a formatted value.</summary>
    public void AppendFormatted<T>(T value) => _text.AppendFormatted(value);

    /// <summary>Appends a formatted value with a format string.</summary>
    public void AppendFormatted<T>(T value, string? format) => _text.AppendFormatted(value, format);

    /// <summary>The text, built only on failure.</summary>
    internal string ToStringAndClear() => _text.ToStringAndClear();
}
