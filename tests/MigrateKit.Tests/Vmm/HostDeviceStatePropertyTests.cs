using System;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>
/// HostDeviceState's decode (Read, then the checks HostVm applies) on arbitrary bytes: a value or a
/// <see cref="FormatException"/>, nothing else.
/// </summary>
[TestClass]
public sealed class HostDeviceStatePropertyTests
{
    private const ulong MiB = 1UL << 20;

    [TestMethod]
    public void RandomBytes_DecodeOrThrowFormatException()
    {
        Gen.Byte.Array[0, 200].DecodeOnlyThrows<FormatException>(Decode);
    }

    [TestMethod]
    public void MutatedValidStates_DecodeOrThrowFormatException()
    {
        HostWorkload w = HostWorkload.HotCold(new GuestRange(MiB, 2 * MiB), new GuestRange(2 * MiB, 6 * MiB), 7);
        byte[] valid = HostDeviceState.Write(w, new HostWorkerState { Pass = 2, Position = 3, Rng = 5 }, started: true);
        ByteMutations.Of(valid).DecodeOnlyThrows<FormatException>(Decode);
    }

    private static void Decode(byte[] bytes)
    {
        (HostWorkload w, HostWorkerState state) = HostDeviceState.Read(bytes);
        HostDeviceState.CheckWorkload(w);
        HostDeviceState.CheckFits(w, state);
    }
}
