using System.Threading;
using MigrateKit.Guests;

namespace MigrateKit.Vmm;

/// <summary>
/// What one vCPU's guest program has written to its ports: pass numbers and self-check failures
/// on the status port (see <see cref="GuestPorts.FailureFlag"/>), as dwords or lines of serial text,
/// one pace write per page.
/// </summary>
internal sealed class GuestReports
{
    private uint _passes;
    private long _failures;
    private long _firstFailedPage = -1;
    private long _pagesWritten;

    /// <summary>The last pass number reported.</summary>
    internal uint Passes => Volatile.Read(ref _passes);

    internal long Failures => Interlocked.Read(ref _failures);

    /// <summary>The page index of the first failure, or -1.</summary>
    internal long FirstFailedPage => Interlocked.Read(ref _firstFailedPage);

    internal long PagesWritten => Interlocked.Read(ref _pagesWritten);

    /// <summary>Records a status-port value: a failed page when it carries the failure flag, else a pass number.</summary>
    internal void Status(uint value)
    {
        if ((value & GuestPorts.FailureFlag) == 0)
        {
            Volatile.Write(ref _passes, value);
        }
        else if (Interlocked.Increment(ref _failures) == 1)
        {
            Interlocked.Exchange(ref _firstFailedPage, value & ~GuestPorts.FailureFlag);
        }
    }

    /// <summary>Records the reports of serial text (see <see cref="GuestPorts.SerialText"/>) as <see cref="Status"/> does dwords.</summary>
    internal void Serial(GuestSerialLog log)
    {
        foreach (uint page in log.FailedPages)
        {
            Status(GuestPorts.FailureFlag | page);
        }

        foreach (uint pass in log.Passes)
        {
            Status(pass);
        }
    }

    /// <summary>Records a pace-port write.</summary>
    internal void PageWritten() => Interlocked.Increment(ref _pagesWritten);

    /// <summary>The reports as a <see cref="VcpuStatus"/>.</summary>
    internal VcpuStatus ToStatus(uint vcpuId, bool halted, string? fault) =>
        new(vcpuId, Passes, Failures, FirstFailedPage, PagesWritten, halted, fault);
}
