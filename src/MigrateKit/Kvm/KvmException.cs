using System.Runtime.CompilerServices;

namespace MigrateKit.Kvm;

/// <summary>A KVM operation failed; carries the operation and the errno the kernel returned.</summary>
public sealed class KvmException : LinuxException
{
    /// <summary>Creates the exception for a failed operation.</summary>
    /// <param name="operation">What was attempted, e.g. <c>KVM_GET_DIRTY_LOG (slot 3)</c>.</param>
    /// <param name="errno">The positive errno value.</param>
    public KvmException(string operation, int errno)
        : base(operation, errno)
    {
    }

    /// <summary>Creates the exception with a message of its own.</summary>
    public KvmException(string operation, int errno, string message)
        : base(operation, errno, message)
    {
    }

    /// <summary>Throws a <see cref="KvmException"/> for a negative (<c>-errno</c>) result of a KVM call.</summary>
    internal static void Check(int result, string operation)
    {
        if (result < 0)
        {
            throw new KvmException(operation, -result);
        }
    }

    /// <summary>The same, with a description that is formatted only on failure (no allocation on the hot paths).</summary>
    internal static void Check(int result, [InterpolatedStringHandlerArgument(nameof(result))] ref FailureMessageHandler operation)
    {
        if (result < 0)
        {
            throw new KvmException(operation.ToStringAndClear(), -result);
        }
    }
}
