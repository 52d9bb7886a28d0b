using System.Runtime.CompilerServices;

namespace MigrateKit;

/// <summary>The one place where a native -errno becomes an exception.</summary>
internal static class Errno
{
    internal const int EPERM = 1;
    internal const int ENOENT = 2;
    internal const int ESRCH = 3;
    internal const int EINTR = 4;
    internal const int EIO = 5;
    internal const int E2BIG = 7;
    internal const int EBADF = 9;
    internal const int EAGAIN = 11;
    internal const int ENOMEM = 12;
    internal const int EACCES = 13;
    internal const int EFAULT = 14;
    internal const int EBUSY = 16;
    internal const int EEXIST = 17;
    internal const int ENODEV = 19;
    internal const int EINVAL = 22;
    internal const int ENOSPC = 28;
    internal const int ERANGE = 34;
    internal const int ENOSYS = 38;
    internal const int EPROTO = 71;
    internal const int EOPNOTSUPP = 95;

    /// <summary>Throws a <see cref="LinuxException"/> for a negative result; returns otherwise.</summary>
    internal static void Check(int result, string operation)
    {
        if (result < 0)
        {
            throw new LinuxException(operation, -result);
        }
    }

    /// <summary>The same, with a description that is formatted only on failure.</summary>
    internal static void Check(int result, [InterpolatedStringHandlerArgument(nameof(result))] ref FailureMessageHandler operation)
    {
        if (result < 0)
        {
            throw new LinuxException(operation.ToStringAndClear(), -result);
        }
    }

    /// <summary>The symbolic name of an errno value, such as <c>EINVAL</c>.</summary>
    internal static string Name(int errno) => errno switch
    {
        EPERM => "EPERM",
        ENOENT => "ENOENT",
        ESRCH => "ESRCH",
        EINTR => "EINTR",
        EIO => "EIO",
        E2BIG => "E2BIG",
        EBADF => "EBADF",
        EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM",
        EACCES => "EACCES",
        EFAULT => "EFAULT",
        EBUSY => "EBUSY",
        EEXIST => "EEXIST",
        ENODEV => "ENODEV",
        EINVAL => "EINVAL",
        ENOSPC => "ENOSPC",
        ERANGE => "ERANGE",
        ENOSYS => "ENOSYS",
        EPROTO => "EPROTO",
        EOPNOTSUPP => "EOPNOTSUPP",
        _ => "errno " + errno,
    };

    /// <summary>The C library's text for an errno value.</summary>
    internal static string Describe(int errno) => System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(errno);
}
