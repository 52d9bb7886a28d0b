using System;
using LibvirtSharp;

namespace MigrateKit.Libvirt;

/// <summary>A dirty-rate measurement of a libvirt domain failed; <see cref="Failure"/> says why.</summary>
public sealed class LibvirtDirtyRateException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="failure">Why the measurement failed.</param>
    /// <param name="domain">The domain's name.</param>
    /// <param name="mode">The mode asked for.</param>
    /// <param name="message">What happened, in words.</param>
    /// <param name="innerException">libvirt's error, when there is one.</param>
    public LibvirtDirtyRateException(LibvirtDirtyRateFailure failure, string domain, DirtyRateMode mode, string message, Exception? innerException = null)
        : base(message, innerException)
    {
        Failure = failure;
        Domain = domain;
        Mode = mode;
    }

    /// <summary>Why the measurement failed.</summary>
    public LibvirtDirtyRateFailure Failure { get; }

    /// <summary>The domain that was to be measured.</summary>
    public string Domain { get; }

    /// <summary>The mode asked for.</summary>
    public DirtyRateMode Mode { get; }
}
