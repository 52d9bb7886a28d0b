using System;
using MigrateKit.Interop;

namespace MigrateKit.Kvm;

/// <summary>A KVM operation failed; carries the operation and the errno the kernel returned.</summary>
public sealed class KvmException : Exception
{
    /// <summary>Creates the exception for a failed operation.</summary>
    /// <param name="operation">What was attempted, e.g. <c>KVM_GET_DIRTY_LOG (slot 3)</c>.</param>
    /// <param name="errno">The positive errno value.</param>
    public KvmException(string operation, int errno)
        : base($"{operation} failed: {Interop.Errno.Describe(errno)} ({Interop.Errno.Name(errno)})")
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>Creates the exception with a message of its own.</summary>
    public KvmException(string operation, int errno, string message)
        : base(message)
    {
        Operation = operation;
        Errno = errno;
    }

    /// <summary>The operation that failed, e.g. <c>KVM_SET_USER_MEMORY_REGION (slot 1)</c>.</summary>
    public string Operation { get; }

    /// <summary>The errno value (positive), e.g. 22 for EINVAL.</summary>
    public int Errno { get; }

    /// <summary>The symbolic errno name, e.g. <c>EINVAL</c>.</summary>
    public string ErrnoName => Interop.Errno.Name(Errno);
}
