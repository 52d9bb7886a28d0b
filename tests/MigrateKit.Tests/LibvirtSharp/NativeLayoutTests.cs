using System;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using LibvirtSharp;
using LibvirtSharp.Interop;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.LibvirtSharp;

/// <summary>
/// The managed mirrors of libvirt's structures and constants, pinned against libvirt 9.0's headers
/// (libvirt-common.h, virterror.h, libvirt-domain.h) for LP64 Linux. Needs no libvirt.
/// </summary>
[TestClass]
public sealed class NativeLayoutTests
{
    [TestMethod]
    public void TypedParameter_Is96Bytes_WithTypeAt80_AndValueAt88()
    {
        Assert.AreEqual(96, Unsafe.SizeOf<VirTypedParameter>());
        Assert.AreEqual(96, Marshal.SizeOf<VirTypedParameter>());
        Assert.AreEqual(80, VirTypedParameter.FieldLength);
        Assert.AreEqual(80, (int)Marshal.OffsetOf<VirTypedParameter>(nameof(VirTypedParameter.Type)));
        foreach (string member in new[] { "I", "UI", "L", "UL", "D", "B", "S" })
        {
            Assert.AreEqual(88, (int)Marshal.OffsetOf<VirTypedParameter>(member), member);
        }
    }

    [TestMethod]
    public void TypedParameterTypes_MatchVirTypedParameterType()
    {
        Assert.AreEqual(1, VirTypedParameterType.Int);
        Assert.AreEqual(2, VirTypedParameterType.UInt);
        Assert.AreEqual(3, VirTypedParameterType.LLong);
        Assert.AreEqual(4, VirTypedParameterType.ULLong);
        Assert.AreEqual(5, VirTypedParameterType.Double);
        Assert.AreEqual(6, VirTypedParameterType.Boolean);
        Assert.AreEqual(7, VirTypedParameterType.String);
    }

    [TestMethod]
    public void Error_Is80Bytes_WithMessageAt8_AndIntsAt64()
    {
        Assert.AreEqual(80, Unsafe.SizeOf<VirError>());
        Assert.AreEqual(0, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Code)));
        Assert.AreEqual(4, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Domain)));
        Assert.AreEqual(8, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Message)));
        Assert.AreEqual(16, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Level)));
        Assert.AreEqual(40, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Str1)));
        Assert.AreEqual(64, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Int1)));
        Assert.AreEqual(72, (int)Marshal.OffsetOf<VirError>(nameof(VirError.Net)));
    }

    [TestMethod]
    public void DomainStatsRecord_Is24Bytes()
    {
        Assert.AreEqual(24, Unsafe.SizeOf<VirDomainStatsRecord>());
        Assert.AreEqual(8, (int)Marshal.OffsetOf<VirDomainStatsRecord>(nameof(VirDomainStatsRecord.Params)));
        Assert.AreEqual(16, (int)Marshal.OffsetOf<VirDomainStatsRecord>(nameof(VirDomainStatsRecord.NParams)));
    }

    [TestMethod]
    [DataRow(MigrationFlags.Live, 1u << 0)]
    [DataRow(MigrationFlags.PeerToPeer, 1u << 1)]
    [DataRow(MigrationFlags.Tunnelled, 1u << 2)]
    [DataRow(MigrationFlags.PersistDestination, 1u << 3)]
    [DataRow(MigrationFlags.UndefineSource, 1u << 4)]
    [DataRow(MigrationFlags.Paused, 1u << 5)]
    [DataRow(MigrationFlags.NonSharedDisk, 1u << 6)]
    [DataRow(MigrationFlags.NonSharedIncremental, 1u << 7)]
    [DataRow(MigrationFlags.ChangeProtection, 1u << 8)]
    [DataRow(MigrationFlags.Unsafe, 1u << 9)]
    [DataRow(MigrationFlags.Offline, 1u << 10)]
    [DataRow(MigrationFlags.Compressed, 1u << 11)]
    [DataRow(MigrationFlags.AbortOnError, 1u << 12)]
    [DataRow(MigrationFlags.AutoConverge, 1u << 13)]
    [DataRow(MigrationFlags.RdmaPinAll, 1u << 14)]
    [DataRow(MigrationFlags.Postcopy, 1u << 15)]
    [DataRow(MigrationFlags.Tls, 1u << 16)]
    [DataRow(MigrationFlags.Parallel, 1u << 17)]
    [DataRow(MigrationFlags.NonSharedSynchronousWrites, 1u << 18)]
    [DataRow(MigrationFlags.PostcopyResume, 1u << 19)]
    [DataRow(MigrationFlags.ZeroCopy, 1u << 20)]
    public void MigrationFlag_MatchesVirDomainMigrateFlags(MigrationFlags flag, uint expected) =>
        Assert.AreEqual(expected, (uint)flag, flag.ToString());

    [TestMethod]
    public void DomainStatsTypes_MatchVirDomainStatsTypes()
    {
        Assert.AreEqual(1u, (uint)DomainStatsTypes.State);
        Assert.AreEqual(2u, (uint)DomainStatsTypes.CpuTotal);
        Assert.AreEqual(4u, (uint)DomainStatsTypes.Balloon);
        Assert.AreEqual(8u, (uint)DomainStatsTypes.Vcpu);
        Assert.AreEqual(16u, (uint)DomainStatsTypes.Interface);
        Assert.AreEqual(32u, (uint)DomainStatsTypes.Block);
        Assert.AreEqual(64u, (uint)DomainStatsTypes.Perf);
        Assert.AreEqual(128u, (uint)DomainStatsTypes.Iothread);
        Assert.AreEqual(256u, (uint)DomainStatsTypes.Memory);
        Assert.AreEqual(512u, (uint)DomainStatsTypes.DirtyRate);
        Assert.AreEqual(1024u, (uint)DomainStatsTypes.Vm);
    }

    [TestMethod]
    [DataRow(DomainState.PmSuspended, 7L)]
    [DataRow(DomainState.Shutoff, 5L)]
    [DataRow(DomainJobType.Cancelled, 5L)]
    [DataRow(DomainJobType.Unbounded, 2L)]
    [DataRow(DomainEventType.Crashed, 8L)]
    [DataRow(DomainEventType.Stopped, 5L)]
    [DataRow(DirtyRateCalcStatus.Measured, 2L)]
    [DataRow(ListDomainsFlags.NoCheckpoint, 1L << 15)]
    [DataRow(DomainUndefineFlags.KeepTpm, 1L << 6)]
    [DataRow(DomainCreateFlags.ResetNvram, 1L << 5)]
    [DataRow(DomainXmlFlags.Migratable, 1L << 3)]
    public void Enum_UsesLibvirtsValue(object value, long expected) =>
        Assert.AreEqual(expected, Convert.ToInt64(value, CultureInfo.InvariantCulture), $"{value.GetType().Name}.{value}");

    [TestMethod]
    public void LibraryVersionEncoding_SplitsMajorMinorRelease() =>
        Assert.AreEqual(new Version(9, 0, 12), global::LibvirtSharp.Libvirt.Decode(9_000_012));
}
