using System.Text;
using MigrateKit.Guests;

namespace MigrateKit.Vmm;

/// <summary>
/// Collects the characters a guest writes to its UART's transmit register into lines and parses
/// each complete line with <see cref="GuestSerialLog.Parse"/>, as for QEMU's serial file. Not thread-safe.
/// </summary>
internal sealed class SerialLines
{
    // Longer than any report; a line that grows past it is not one, and is cut so memory stays bounded.
    internal const int MaxLineLength = 256;

    private readonly StringBuilder _line = new();

    /// <summary>Adds one character; returns the parsed line when it ends one, else null.</summary>
    internal GuestSerialLog? Add(byte character)
    {
        if (character != '\n')
        {
            if (_line.Length < MaxLineLength)
            {
                _line.Append((char)character);
            }

            return null;
        }

        _line.Append('\n');
        GuestSerialLog log = GuestSerialLog.Parse(_line.ToString());
        _line.Clear();
        return log;
    }
}
