using System;
using System.Buffers;
using System.Buffers.Binary;
using System.Linq;
using System.Text;
using MigrateKit.Memory;

namespace MigrateKit.Transport;

/// <summary>The Hello: a peer's claims about the VM, checked field by field before anything is built for it.</summary>
public sealed partial class PageStreamReader
{
    private static MigrationHello ParseHello(ReadOnlySequence<byte> payload)
    {
        const int fixedSize = PageStreamWriter.HelloFixedSize;

        // Magic and version come first, so a peer of another protocol or version is named as such.
        if (payload.Length < 8)
        {
            throw new MigrationProtocolException("Hello", "length", $"A Hello is at least {fixedSize} bytes (got {payload.Length}).");
        }

        Span<byte> s = stackalloc byte[fixedSize];
        payload.Slice(0, Math.Min(fixedSize, payload.Length)).CopyTo(s);
        uint magic = BinaryPrimitives.ReadUInt32LittleEndian(s);
        if (magic != MigrationProtocol.HelloMagic)
        {
            throw new MigrationProtocolException("Hello", "magic", $"Expected 0x{MigrationProtocol.HelloMagic:x8} (\"MKMG\"), got 0x{magic:x8}: the peer does not speak this protocol.");
        }

        ushort version = BinaryPrimitives.ReadUInt16LittleEndian(s[4..]);
        ushort minimum = BinaryPrimitives.ReadUInt16LittleEndian(s[6..]);
        CheckHelloVersions(version, minimum);
        if (payload.Length < fixedSize)
        {
            throw new MigrationProtocolException("Hello", "length", $"A Hello is at least {fixedSize} bytes (got {payload.Length}).");
        }

        uint pageSize = BinaryPrimitives.ReadUInt32LittleEndian(s[8..]);
        if (pageSize != MigrationProtocol.PageSize)
        {
            throw new MigrationProtocolException("Hello", "pageSize", $"Page size {pageSize} is not {MigrationProtocol.PageSize}.");
        }

        int vcpus = BinaryPrimitives.ReadInt32LittleEndian(s[12..]);
        int regionCount = BinaryPrimitives.ReadInt32LittleEndian(s[16..]);
        int nameBytes = BinaryPrimitives.ReadInt32LittleEndian(s[20..]);
        if (vcpus < 1)
        {
            throw new MigrationProtocolException("Hello", "vcpuCount", $"A VM has at least one vCPU (got {vcpus}).");
        }

        if (regionCount is < 1 or > MigrationProtocol.MaxRegions)
        {
            throw new MigrationProtocolException("Hello", "regionCount", $"A Hello carries 1 to {MigrationProtocol.MaxRegions} regions (got {regionCount}).");
        }

        if (nameBytes is < 0 or > MigrationProtocol.MaxStringBytes || payload.Length != fixedSize + (regionCount * 16L) + nameBytes)
        {
            throw new MigrationProtocolException("Hello", "length", $"{regionCount} regions and a {nameBytes}-byte name do not make {payload.Length} bytes.");
        }

        Guid session = SessionId("Hello", s.Slice(24, 16));
        byte[] rest = payload.Slice(fixedSize).ToArray();
        var regions = new GuestMemoryRegionSpec[regionCount];
        for (int i = 0; i < regionCount; i++)
        {
            ulong gpa = BinaryPrimitives.ReadUInt64LittleEndian(rest.AsSpan(i * 16));
            ulong size = BinaryPrimitives.ReadUInt64LittleEndian(rest.AsSpan((i * 16) + 8));
            if (size == 0 || size % GuestMemoryLayout.PageSize != 0 || gpa % GuestMemoryLayout.PageSize != 0 || gpa + size < gpa)
            {
                throw new MigrationProtocolException("Hello", "regions", $"Region {i} (0x{gpa:x} + 0x{size:x}) is empty, unaligned or wraps.");
            }

            regions[i] = new GuestMemoryRegionSpec(gpa, size);
        }

        // Regions that overlap would give one guest page two places in the stream: a violation, refused
        // before the destination builds anything (its memory layout would refuse them as an argument error).
        int[] byAddress = Enumerable.Range(0, regionCount).OrderBy(i => regions[i].GuestPhysicalAddress).ToArray();
        for (int k = 1; k < byAddress.Length; k++)
        {
            GuestMemoryRegionSpec before = regions[byAddress[k - 1]];
            if (regions[byAddress[k]].GuestPhysicalAddress < before.GuestPhysicalAddress + before.Size)
            {
                throw new MigrationProtocolException("Hello", "regions", $"Region {byAddress[k]} (at 0x{regions[byAddress[k]].GuestPhysicalAddress:x}) overlaps region {byAddress[k - 1]} (0x{before.GuestPhysicalAddress:x} + 0x{before.Size:x}).");
            }
        }

        string name;
        try
        {
            name = new UTF8Encoding(false, true).GetString(rest, regionCount * 16, nameBytes);
        }
        catch (DecoderFallbackException)
        {
            throw new MigrationProtocolException("Hello", "sourceName", "The name is not valid UTF-8.");
        }

        return new MigrationHello(version, regions, vcpus, name) { SessionId = session, MinimumVersion = minimum };
    }
}
