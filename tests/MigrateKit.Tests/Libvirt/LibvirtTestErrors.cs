using LibvirtSharp;

namespace MigrateKit.Tests.Libvirt;

/// <summary>Libvirt errors as a real daemon reports them.</summary>
internal static class LibvirtTestErrors
{
    internal static LibvirtException Create(int code, int domain, string message) => new("virDomainGetJobStats", code, domain, message);
}
