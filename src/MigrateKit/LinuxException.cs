using System;

namespace MigrateKit;

/// <summary>
/// A Linux system call failed; carries the operation and the errno the kernel returned. Failures
/// of a facility with its own meaning derive from it (<see cref="Kvm.KvmException"/> for KVM,
/// <see cref="Tracking.DirtyTrackingException"/> for userfaultfd), so a caller can catch one
/// facility or every kernel failure.
/// </summary>
public class LinuxException : Exception
{
    /// <summary>Creates the exception for a failed operation, with the C library's text for the errno.</summary>
    /// <param name="operation">What was attempted, e.g. <c>mmap of 4096 bytes for region 0</c>.</param>
    /// <param name="errno">The positive errno value.</param>
    public LinuxException(string operation, int errno)
        : this(operation, errno, $"{operation} failed: {MigrateKit.Errno.Describe(errno)} ({MigrateKit.Errno.Name(errno)})")
    {
    }

    /// <summary>Creates the exception with a message of its own.</summary>
    public LinuxException(string operation, int errno, string message)
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
    public string ErrnoName => MigrateKit.Errno.Name(Errno);
}
