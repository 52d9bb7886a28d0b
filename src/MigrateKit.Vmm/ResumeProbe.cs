using System.Threading;

namespace MigrateKit.Vmm;

/// <summary>The part of a resume every VM here shares: starting a thread, measured by doing it.</summary>
internal static class ResumeProbe
{
    internal static void StartAndJoinThread()
    {
        var probe = new Thread(static () => { }) { IsBackground = true };
        probe.Start();
        probe.Join();
    }
}
