using System;

namespace MigrateKit.Qemu;

/// <summary>
/// An error from QEMU's QMP monitor: either an <c>{"error": {"class", "desc"}}</c> reply to a
/// command, or a message from the peer that is not valid QMP.
/// </summary>
public sealed class QmpException : Exception
{
    /// <summary>The class QMP named for a peer message that is not valid QMP.</summary>
    public const string ProtocolErrorClass = "ProtocolError";

    /// <summary>Creates an exception with no details.</summary>
    public QmpException()
        : this(ProtocolErrorClass, "QMP error")
    {
    }

    /// <summary>Creates a protocol error with a message.</summary>
    /// <param name="message">What went wrong.</param>
    public QmpException(string message)
        : this(ProtocolErrorClass, message)
    {
    }

    /// <summary>Creates a protocol error with a message and its cause.</summary>
    /// <param name="message">What went wrong.</param>
    /// <param name="innerException">The cause.</param>
    public QmpException(string message, Exception? innerException)
        : this(ProtocolErrorClass, message, command: null, innerException)
    {
    }

    /// <summary>Creates an exception for an error reply.</summary>
    /// <param name="errorClass">QMP's error class, such as <c>GenericError</c> or <c>CommandNotFound</c>.</param>
    /// <param name="description">QMP's human-readable description.</param>
    /// <param name="command">The command that failed, if any.</param>
    /// <param name="innerException">The cause, if any.</param>
    public QmpException(string errorClass, string description, string? command = null, Exception? innerException = null)
        : base(command is null ? $"QMP {errorClass}: {description}" : $"QMP command '{command}' failed with {errorClass}: {description}", innerException)
    {
        ErrorClass = errorClass;
        Description = description;
        Command = command;
    }

    /// <summary>QMP's error class (<c>GenericError</c>, <c>CommandNotFound</c>…), or <see cref="ProtocolErrorClass"/>.</summary>
    public string ErrorClass { get; }

    /// <summary>QMP's human-readable description of the error.</summary>
    public string Description { get; }

    /// <summary>The command whose reply carried the error, or <see langword="null"/> for a protocol error.</summary>
    public string? Command { get; }
}
