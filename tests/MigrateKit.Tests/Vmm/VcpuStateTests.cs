using System;
using System.Buffers.Binary;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Guests;
using MigrateKit.Kvm;
using MigrateKit.Memory;
using MigrateKit.Vmm;

namespace MigrateKit.Tests.Vmm;

/// <summary>VcpuState's blob format (round trip and malformed input) and MicroVmOptions validation.</summary>
[TestClass]
public sealed class VcpuStateTests
{
    private const int Header = 10;
    private static readonly int Each = 5 + Unsafe.SizeOf<KvmRegisters>() + Unsafe.SizeOf<KvmSpecialRegisters>();

    [TestMethod]
    public void RoundTrip_PreservesEveryByteOfEveryVcpu()
    {
        var random = new Random(42);
        VcpuState[] states = Enumerable.Range(0, 5).Select(i => RandomState(random, (uint)(i * 3))).ToArray();

        byte[] blob = VcpuState.Serialize(states);
        IReadOnlyList<VcpuState> back = VcpuState.Deserialize(blob);

        Assert.HasCount(states.Length, back);
        for (int i = 0; i < states.Length; i++)
        {
            Assert.AreEqual(states[i].Id, back[i].Id);
            Assert.IsTrue(Bytes(states[i].Registers).SequenceEqual(Bytes(back[i].Registers)), $"registers of vCPU {i}");
            Assert.IsTrue(Bytes(states[i].SpecialRegisters).SequenceEqual(Bytes(back[i].SpecialRegisters)), $"special registers of vCPU {i}");
            Assert.AreEqual(states[i].Registers.Rip, back[i].Registers.Rip);
            Assert.AreEqual(states[i].SpecialRegisters.Cs.Selector, back[i].SpecialRegisters.Cs.Selector);
            Assert.AreEqual(states[i].SpecialRegisters.InterruptBitmap[3], back[i].SpecialRegisters.InterruptBitmap[3]);
        }

        // Serializing again gives the same bytes.
        Assert.AreSequenceEqual(blob, VcpuState.Serialize(back));
    }

    [TestMethod]
    public void Blob_HasTheDocumentedLayout()
    {
        VcpuState state = RandomState(new Random(1), 7);
        byte[] blob = VcpuState.Serialize([state]);

        Assert.HasCount(Header + Each, blob);
        Assert.AreEqual("MKVS", System.Text.Encoding.ASCII.GetString(blob, 0, 4));
        Assert.AreEqual((ushort)2, BinaryPrimitives.ReadUInt16LittleEndian(blob.AsSpan(4)));
        Assert.AreEqual(1, BinaryPrimitives.ReadInt32LittleEndian(blob.AsSpan(6)));
        Assert.AreEqual(7u, BinaryPrimitives.ReadUInt32LittleEndian(blob.AsSpan(10)));
        Assert.AreEqual(state.Running ? 1 : 0, blob[14]);
        Assert.AreEqual(state.Registers.Rax, BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(15)));
        Assert.AreEqual(state.Registers.Rip, BinaryPrimitives.ReadUInt64LittleEndian(blob.AsSpan(15 + 128)));
    }

    [TestMethod]
    public void NoVcpus_RoundTrips()
    {
        byte[] blob = VcpuState.Serialize([]);
        Assert.HasCount(Header, blob);
        Assert.IsEmpty(VcpuState.Deserialize(blob));
    }

    [TestMethod]
    public void Serialize_Null_Throws() =>
        Assert.ThrowsExactly<ArgumentNullException>(() => VcpuState.Serialize(null!));

    [TestMethod]
    public void EveryTruncation_IsRejected()
    {
        byte[] blob = VcpuState.Serialize([RandomState(new Random(2), 0), RandomState(new Random(3), 1)]);
        for (int length = 0; length < blob.Length; length++)
        {
            Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(blob.AsSpan(0, length)), $"{length} of {blob.Length} bytes");
        }
    }

    [TestMethod]
    public void TrailingBytes_AreRejected()
    {
        byte[] blob = VcpuState.Serialize([RandomState(new Random(4), 0)]);
        byte[] longer = [.. blob, 0];
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(longer));
        Assert.Contains("does not hold 1 vCPUs", ex.Message);
    }

    [TestMethod]
    public void BadMagic_IsRejected()
    {
        byte[] blob = VcpuState.Serialize([RandomState(new Random(5), 0)]);
        blob[0] ^= 0x20;
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(blob));
        Assert.Contains("magic", ex.Message);
    }

    [TestMethod]
    [DataRow((ushort)0)]
    [DataRow((ushort)1)]
    [DataRow((ushort)3)]
    [DataRow(ushort.MaxValue)]
    public void UnknownVersion_IsRejected(ushort version)
    {
        byte[] blob = VcpuState.Serialize([RandomState(new Random(6), 0)]);
        BinaryPrimitives.WriteUInt16LittleEndian(blob.AsSpan(4), version);
        FormatException ex = Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(blob));
        Assert.Contains($"version {version}", ex.Message);
    }

    [TestMethod]
    [DataRow(-1)]
    [DataRow(int.MinValue)]
    [DataRow(2)]
    [DataRow(1025)]
    [DataRow(int.MaxValue)]
    [DataRow(0x0080_0000)] // count * size would overflow an int
    public void CountNotMatchingTheLength_IsRejected(int count)
    {
        byte[] blob = VcpuState.Serialize([RandomState(new Random(7), 0)]);
        BinaryPrimitives.WriteInt32LittleEndian(blob.AsSpan(6), count);
        Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(blob));
    }

    [TestMethod]
    public void RandomGarbage_IsRejected_NeverMisread()
    {
        var random = new Random(8);
        for (int i = 0; i < 500; i++)
        {
            byte[] garbage = new byte[random.Next(0, 2 * (Header + Each))];
            random.NextBytes(garbage);
            Assert.ThrowsExactly<FormatException>(() => VcpuState.Deserialize(garbage));
        }
    }

    [TestMethod]
    public void DefaultOptions_AreValid_AndDocumented()
    {
        var options = new MicroVmOptions();
        options.Validate();
        Assert.AreEqual(256UL << 20, options.MemorySize);
        Assert.IsNull(options.Regions);
        Assert.AreEqual(1, options.VcpuCount);
        Assert.AreEqual(0, options.DirtyRingBytes);
        Assert.IsFalse(options.ManualDirtyLogProtect);
        Assert.IsFalse(options.DirtyLogInitiallySet);
        Assert.IsNull(options.KvmPath);
        Assert.AreEqual(GuestPorts.Default, options.Ports);
    }

    [TestMethod]
    public void ValidOptionCombinations_PassValidation()
    {
        MicroVmOptions[] valid =
        [
            new() { MemorySize = 4096 },
            new() { MemorySize = 0, Regions = [new GuestMemoryRegionSpec(0, 1 << 20)] },
            new() { VcpuCount = 64 },
            new() { DirtyRingBytes = 1 << 16 },
            new() { DirtyRingBytes = 1 },
            new() { ManualDirtyLogProtect = true },
            new() { ManualDirtyLogProtect = true, DirtyLogInitiallySet = true },
        ];

        foreach (MicroVmOptions options in valid)
        {
            options.Validate();
        }

        Assert.HasCount(7, valid);
    }

    [TestMethod]
    [DataRow(0UL)]
    [DataRow(1UL)]
    [DataRow(4097UL)]
    public void BadMemorySize_IsRejected(ulong size) =>
        AssertInvalid(new MicroVmOptions { MemorySize = size }, nameof(MicroVmOptions.MemorySize));

    [TestMethod]
    public void EmptyRegions_AreRejected() =>
        AssertInvalid(new MicroVmOptions { Regions = [] }, nameof(MicroVmOptions.Regions));

    [TestMethod]
    [DataRow(0)]
    [DataRow(-1)]
    [DataRow(65)]
    public void BadVcpuCount_IsRejected(int count) =>
        AssertInvalid(new MicroVmOptions { VcpuCount = count }, nameof(MicroVmOptions.VcpuCount));

    [TestMethod]
    [DataRow(3)]
    [DataRow(4095)]
    [DataRow(-4096)]
    [DataRow(int.MinValue)]
    public void DirtyRingBytesNotAPowerOfTwo_IsRejected(int bytes) =>
        AssertInvalid(new MicroVmOptions { DirtyRingBytes = bytes }, nameof(MicroVmOptions.DirtyRingBytes));

    [TestMethod]
    public void DirtyRingWithManualProtect_IsRejected() =>
        AssertInvalid(new MicroVmOptions { DirtyRingBytes = 4096, ManualDirtyLogProtect = true }, nameof(MicroVmOptions.ManualDirtyLogProtect));

    [TestMethod]
    public void InitiallySetWithoutManualProtect_IsRejected() =>
        AssertInvalid(new MicroVmOptions { DirtyLogInitiallySet = true }, nameof(MicroVmOptions.DirtyLogInitiallySet));

    [TestMethod]
    public void SerialTextPorts_AreAccepted_ForBootedImages() =>
        new MicroVmOptions { Ports = GuestPorts.Com1 }.Validate();

    [TestMethod]
    public void SerialTextPortsWhoseUartRegistersPassPortFfff_AreRejected() =>
        AssertInvalid(new MicroVmOptions { Ports = new GuestPorts(null, 0xFFFC, SerialText: true) }, nameof(MicroVmOptions.Ports));

    [TestMethod]
    public void MicroVmCreate_ValidatesBeforeTouchingKvm()
    {
        // Fails with the option's problem whether or not this machine has /dev/kvm.
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(() =>
            MicroVm.Create(new MicroVmOptions { VcpuCount = 0, KvmPath = "/nonexistent/kvm" }));
        Assert.AreEqual(nameof(MicroVmOptions.VcpuCount), ex.ParamName);
    }

    private static void AssertInvalid(MicroVmOptions options, string paramName)
    {
        ArgumentException ex = Assert.ThrowsExactly<ArgumentException>(options.Validate);
        Assert.AreEqual(paramName, ex.ParamName);
        Assert.Contains(paramName, ex.Message);
    }

    private static VcpuState RandomState(Random random, uint id)
    {
        KvmRegisters regs = default;
        KvmSpecialRegisters sregs = default;
        random.NextBytes(MemoryMarshal.AsBytes(new Span<KvmRegisters>(ref regs)));
        random.NextBytes(MemoryMarshal.AsBytes(new Span<KvmSpecialRegisters>(ref sregs)));
        return new VcpuState(id, regs, sregs, random.Next(2) == 0);
    }

    private static byte[] Bytes<T>(T value)
        where T : unmanaged =>
        MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();
}
