using System;

namespace LibvirtSharp;

/// <summary>A libvirt call failed; carries libvirt's error code, error domain and message.</summary>
/// <remarks>
/// <see cref="Exception.Message"/> reads <c>{Operation}: {LibvirtMessage} (code {Code}, domain {ErrorDomain})</c>,
/// for example <c>virDomainLookupByName(web01): Domain not found: no domain with matching name 'web01' (code 42, domain 12)</c>.
/// </remarks>
public sealed class LibvirtException : Exception
{
    /// <summary>Creates the exception for a failed libvirt call.</summary>
    /// <param name="operation">What was attempted: the libvirt function and its subject, e.g. <c>virDomainDestroy(web01)</c>.</param>
    /// <param name="code">libvirt's <c>virErrorNumber</c>.</param>
    /// <param name="errorDomain">libvirt's <c>virErrorDomain</c>: the part of libvirt that raised the error.</param>
    /// <param name="libvirtMessage">libvirt's message, unchanged.</param>
    public LibvirtException(string operation, int code, int errorDomain, string libvirtMessage)
        : base($"{operation}: {libvirtMessage} (code {code}, domain {errorDomain})")
    {
        Operation = operation;
        Code = code;
        ErrorDomain = errorDomain;
        LibvirtMessage = libvirtMessage;
    }

    /// <summary>libvirt's error code (<c>virErrorNumber</c>); see <see cref="LibvirtErrorCodes"/>. 0 if libvirt set none.</summary>
    public int Code { get; }

    /// <summary>The part of libvirt that raised the error (<c>virErrorDomain</c>); see <see cref="LibvirtErrorDomains"/>.</summary>
    public int ErrorDomain { get; }

    /// <summary>libvirt's own message, e.g. <c>Domain not found: no domain with matching name 'web01'</c>.</summary>
    public string LibvirtMessage { get; }

    /// <summary>The libvirt function and its subject, e.g. <c>virConnectOpenAuth(qemu+tcp://host/system)</c>.</summary>
    public string Operation { get; }

    /// <summary>The domain does not exist, or disappeared (<c>VIR_ERR_NO_DOMAIN</c>, 42).</summary>
    public bool IsNoDomain => Code == LibvirtErrorCodes.NoDomain;

    /// <summary>
    /// The connection to libvirt (usually a remote daemon) failed or is gone, so the remedy is to open a
    /// new connection; the operation itself may well succeed on it.
    /// </summary>
    /// <remarks>
    /// True for:
    /// <list type="bullet">
    /// <item><c>VIR_ERR_NO_CONNECT</c> (5): the hypervisor connection could not be made.</item>
    /// <item><c>VIR_ERR_INVALID_CONN</c> (6): the connection object is no longer usable.</item>
    /// <item><c>VIR_ERR_RPC</c> (39): the RPC layer failed (protocol errors, a lost daemon).</item>
    /// <item><c>VIR_ERR_SYSTEM_ERROR</c> (38) raised by the RPC client or the remote driver
    ///   (error domains <c>VIR_FROM_RPC</c> 7 and <c>VIR_FROM_REMOTE</c> 13): socket failures such as
    ///   "unable to connect to server", "End of file while reading data", "Cannot write data: Broken pipe".
    ///   The same code from other domains is a failed system call on the host (a missing disk image,
    ///   for example) and says nothing about the connection.</item>
    /// <item><c>VIR_ERR_INTERNAL_ERROR</c> (1) raised by the RPC client (domain 7): "client socket is closed"
    ///   after the daemon went away, and "connection closed due to keepalive timeout". Elsewhere this code
    ///   is a driver bug or an unexpected hypervisor answer.</item>
    /// <item><c>VIR_ERR_SSH</c> (85) and <c>VIR_ERR_LIBSSH</c> (98): the SSH transport failed.</item>
    /// </list>
    /// Deliberately not included: <c>VIR_ERR_OPERATION_INVALID</c> (55, the domain is in the wrong state),
    /// <c>VIR_ERR_OPERATION_TIMEOUT</c> (68, a hypervisor job lock timed out), <c>VIR_ERR_AUTH_FAILED</c> (45)
    /// and <c>VIR_ERR_GNUTLS_ERROR</c> (40), which reconnecting does not fix, and <c>VIR_ERR_NO_SUPPORT</c> (3).
    /// Matching is on codes and domains only, never on message text, which libvirt translates.
    /// </remarks>
    public bool IsConnectionFault => Code switch
    {
        LibvirtErrorCodes.NoConnect or LibvirtErrorCodes.InvalidConnection or LibvirtErrorCodes.Rpc => true,
        LibvirtErrorCodes.Ssh or LibvirtErrorCodes.LibSsh => true,
        LibvirtErrorCodes.SystemError => ErrorDomain is LibvirtErrorDomains.Rpc or LibvirtErrorDomains.Remote,
        LibvirtErrorCodes.InternalError => ErrorDomain == LibvirtErrorDomains.Rpc,
        _ => false,
    };
}

/// <summary>Values of libvirt's <c>virErrorNumber</c> that callers commonly test (virterror.h).</summary>
public static class LibvirtErrorCodes
{
    /// <summary><c>VIR_ERR_INTERNAL_ERROR</c>.</summary>
    public const int InternalError = 1;

    /// <summary><c>VIR_ERR_NO_SUPPORT</c>: the driver does not implement the function.</summary>
    public const int NoSupport = 3;

    /// <summary><c>VIR_ERR_NO_CONNECT</c>: cannot connect to the hypervisor.</summary>
    public const int NoConnect = 5;

    /// <summary><c>VIR_ERR_INVALID_CONN</c>: invalid connection object.</summary>
    public const int InvalidConnection = 6;

    /// <summary><c>VIR_ERR_INVALID_DOMAIN</c>: invalid domain object.</summary>
    public const int InvalidDomain = 7;

    /// <summary><c>VIR_ERR_INVALID_ARG</c>: invalid function argument.</summary>
    public const int InvalidArgument = 8;

    /// <summary><c>VIR_ERR_OPERATION_FAILED</c>: a command to the hypervisor failed.</summary>
    public const int OperationFailed = 9;

    /// <summary><c>VIR_ERR_XML_ERROR</c>: an XML description is not well formed or broken.</summary>
    public const int XmlError = 27;

    /// <summary><c>VIR_ERR_XML_DETAIL</c>: the XML parser's detailed error (malformed XML).</summary>
    public const int XmlDetail = 35;

    /// <summary><c>VIR_ERR_DOM_EXIST</c>: the domain already exists.</summary>
    public const int DomainExists = 28;

    /// <summary><c>VIR_ERR_OPERATION_DENIED</c>: forbidden on a read-only connection.</summary>
    public const int OperationDenied = 29;

    /// <summary><c>VIR_ERR_SYSTEM_ERROR</c>: a system call failed.</summary>
    public const int SystemError = 38;

    /// <summary><c>VIR_ERR_RPC</c>: an RPC error.</summary>
    public const int Rpc = 39;

    /// <summary><c>VIR_ERR_NO_DOMAIN</c>: domain not found or unexpectedly disappeared.</summary>
    public const int NoDomain = 42;

    /// <summary><c>VIR_ERR_AUTH_FAILED</c>: authentication failed.</summary>
    public const int AuthFailed = 45;

    /// <summary><c>VIR_ERR_OPERATION_INVALID</c>: the operation is not applicable at this time.</summary>
    public const int OperationInvalid = 55;

    /// <summary><c>VIR_ERR_CONFIG_UNSUPPORTED</c>: unsupported configuration construct.</summary>
    public const int ConfigUnsupported = 67;

    /// <summary><c>VIR_ERR_OPERATION_TIMEOUT</c>: a timeout occurred during the operation.</summary>
    public const int OperationTimeout = 68;

    /// <summary><c>VIR_ERR_ARGUMENT_UNSUPPORTED</c>: valid use, but the driver does not support the argument.</summary>
    public const int ArgumentUnsupported = 74;

    /// <summary><c>VIR_ERR_OPERATION_ABORTED</c>: the operation was cancelled or aborted.</summary>
    public const int OperationAborted = 78;

    /// <summary><c>VIR_ERR_MIGRATE_UNSAFE</c>: the migration is not safe.</summary>
    public const int MigrateUnsafe = 81;

    /// <summary><c>VIR_ERR_OPERATION_UNSUPPORTED</c>: the requested operation is not supported.</summary>
    public const int OperationUnsupported = 84;

    /// <summary><c>VIR_ERR_SSH</c>: error in the SSH transport.</summary>
    public const int Ssh = 85;

    /// <summary><c>VIR_ERR_LIBSSH</c>: error in the libssh transport.</summary>
    public const int LibSsh = 98;
}

/// <summary>Values of libvirt's <c>virErrorDomain</c> that callers commonly test (virterror.h).</summary>
public static class LibvirtErrorDomains
{
    /// <summary><c>VIR_FROM_DOM</c>: domain operations.</summary>
    public const int Domain = 6;

    /// <summary><c>VIR_FROM_RPC</c>: the RPC client and its sockets.</summary>
    public const int Rpc = 7;

    /// <summary><c>VIR_FROM_QEMU</c>: the QEMU driver.</summary>
    public const int Qemu = 10;

    /// <summary><c>VIR_FROM_TEST</c>: the test driver.</summary>
    public const int Test = 12;

    /// <summary><c>VIR_FROM_REMOTE</c>: the remote driver.</summary>
    public const int Remote = 13;

    /// <summary><c>VIR_FROM_DOMAIN</c>: domain configuration (XML).</summary>
    public const int DomainConfig = 20;
}
