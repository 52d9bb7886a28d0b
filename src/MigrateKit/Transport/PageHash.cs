using System;
using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace MigrateKit.Transport;

/// <summary>
/// XXH3-64 (seed 0, the default secret) of exactly one 4 KiB page: the value
/// <c>System.IO.Hashing.XxHash3.HashToUInt64</c> returns for the same bytes, compiled fully
/// optimized on first use. The package's code starts in the JIT's unoptimized tier and, with
/// every page of a migration hashed on both ends, a 1 GiB round finished before it was
/// promoted: the stream ran at half speed (docs/BENCHMARKS.md, "Page stream at wire speed").
/// </summary>
internal static class PageHash
{
    private const int PageSize = MigrationProtocol.PageSize;
    private const int StripeSize = 64;
    private const int StripesPerBlock = (SecretSize - StripeSize) / 8;
    private const int BlockSize = StripesPerBlock * StripeSize;
    private const int SecretSize = 192;
    private const ulong Prime32_1 = 0x9E3779B1UL;
    private const ulong Prime32_2 = 0x85EBCA77UL;
    private const ulong Prime32_3 = 0xC2B2AE3DUL;
    private const ulong Prime64_1 = 0x9E3779B185EBCA87UL;
    private const ulong Prime64_2 = 0xC2B2AE3D27D4EB4FUL;
    private const ulong Prime64_3 = 0x165667B19E3779F9UL;
    private const ulong Prime64_4 = 0x85EBCA77C2B2AE63UL;
    private const ulong Prime64_5 = 0x27D4EB2F165667C5UL;

    /// <summary>XXH3's default secret (xxhash.h, <c>XXH3_kSecret</c>).</summary>
    private static ReadOnlySpan<byte> Secret =>
    [
        0xb8, 0xfe, 0x6c, 0x39, 0x23, 0xa4, 0x4b, 0xbe, 0x7c, 0x01, 0x81, 0x2c, 0xf7, 0x21, 0xad, 0x1c,
        0xde, 0xd4, 0x6d, 0xe9, 0x83, 0x90, 0x97, 0xdb, 0x72, 0x40, 0xa4, 0xa4, 0xb7, 0xb3, 0x67, 0x1f,
        0xcb, 0x79, 0xe6, 0x4e, 0xcc, 0xc0, 0xe5, 0x78, 0x82, 0x5a, 0xd0, 0x7d, 0xcc, 0xff, 0x72, 0x21,
        0xb8, 0x08, 0x46, 0x74, 0xf7, 0x43, 0x24, 0x8e, 0xe0, 0x35, 0x90, 0xe6, 0x81, 0x3a, 0x26, 0x4c,
        0x3c, 0x28, 0x52, 0xbb, 0x91, 0xc3, 0x00, 0xcb, 0x88, 0xd0, 0x65, 0x8b, 0x1b, 0x53, 0x2e, 0xa3,
        0x71, 0x64, 0x48, 0x97, 0xa2, 0x0d, 0xf9, 0x4e, 0x38, 0x19, 0xef, 0x46, 0xa9, 0xde, 0xac, 0xd8,
        0xa8, 0xfa, 0x76, 0x3f, 0xe3, 0x9c, 0x34, 0x3f, 0xf9, 0xdc, 0xbb, 0xc7, 0xc7, 0x0b, 0x4f, 0x1d,
        0x8a, 0x51, 0xe0, 0x4b, 0xcd, 0xb4, 0x59, 0x31, 0xc8, 0x9f, 0x7e, 0xc9, 0xd9, 0x78, 0x73, 0x64,
        0xea, 0xc5, 0xac, 0x83, 0x34, 0xd3, 0xeb, 0xc3, 0xc5, 0x81, 0xa0, 0xff, 0xfa, 0x13, 0x63, 0xeb,
        0x17, 0x0d, 0xdd, 0x51, 0xb7, 0xf0, 0xda, 0x49, 0xd3, 0x16, 0x55, 0x26, 0x29, 0xd4, 0x68, 0x9e,
        0x2b, 0x16, 0xbe, 0x58, 0x7d, 0x47, 0xa1, 0xfc, 0x8f, 0xf8, 0xb8, 0xd1, 0x7a, 0xd0, 0x31, 0xce,
        0x45, 0xcb, 0x3a, 0x8f, 0x95, 0x16, 0x04, 0x28, 0xaf, 0xd7, 0xfb, 0xca, 0xbb, 0x4b, 0x40, 0x7e,
    ];

    /// <summary>The hash of one page.</summary>
    /// <exception cref="ArgumentException">The data is not one page long.</exception>
    internal static ulong Hash(ReadOnlySpan<byte> page) => Hash(page, Avx2.IsSupported);

    /// <summary>The hash of one page, with AVX2 or without (both paths are tested on machines that have it).</summary>
    /// <exception cref="ArgumentException">The data is not one page long.</exception>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static ulong Hash(ReadOnlySpan<byte> page, bool vectorized)
    {
        if (page.Length != PageSize)
        {
            throw new ArgumentException($"A page is {PageSize} bytes (got {page.Length}).", nameof(page));
        }

        Span<ulong> acc = [Prime32_3, Prime64_1, Prime64_2, Prime64_3, Prime64_4, Prime32_2, Prime64_5, Prime32_1];
        ReadOnlySpan<byte> secret = Secret;

        // XXH3's long-input loop for this one length: three whole blocks, each scrambled, then the
        // 15 stripes of the last block, then the last stripe with the secret at its own offset.
        const int wholeBlocks = (PageSize - 1) / BlockSize;
        const int lastStripes = (PageSize - 1 - (wholeBlocks * BlockSize)) / StripeSize;
        for (int b = 0; b < wholeBlocks; b++)
        {
            Stripes(acc, page.Slice(b * BlockSize, BlockSize), secret, StripesPerBlock, vectorized);
            Scramble(acc, secret[(SecretSize - StripeSize)..]);
        }

        Stripes(acc, page[(wholeBlocks * BlockSize)..], secret, lastStripes, vectorized);
        Stripes(acc, page[(PageSize - StripeSize)..], secret[(SecretSize - StripeSize - 7)..], 1, vectorized);

        ulong result = unchecked(PageSize * Prime64_1);
        for (int i = 0; i < 4; i++)
        {
            ReadOnlySpan<byte> key = secret[(11 + (16 * i))..];
            result += Fold(acc[2 * i] ^ BinaryPrimitives.ReadUInt64LittleEndian(key), acc[(2 * i) + 1] ^ BinaryPrimitives.ReadUInt64LittleEndian(key[8..]));
        }

        result ^= result >> 37;
        result *= 0x165667919E3779F9UL;
        return result ^ (result >> 32);
    }

    /// <summary>Accumulates <paramref name="count"/> stripes, the secret advancing 8 bytes a stripe.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Stripes(Span<ulong> acc, ReadOnlySpan<byte> data, ReadOnlySpan<byte> secret, int count, bool vectorized)
    {
        if (vectorized && Avx2.IsSupported)
        {
            Vector256<ulong> a0 = Vector256.Create(acc[0], acc[1], acc[2], acc[3]);
            Vector256<ulong> a1 = Vector256.Create(acc[4], acc[5], acc[6], acc[7]);
            ref byte d = ref MemoryMarshal.GetReference(data);
            ref byte s = ref MemoryMarshal.GetReference(secret);
            for (int n = 0; n < count; n++)
            {
                a0 = Accumulate(a0, Vector256.LoadUnsafe(ref d, (nuint)(n * StripeSize)).AsUInt64(), Vector256.LoadUnsafe(ref s, (nuint)(n * 8)).AsUInt64());
                a1 = Accumulate(a1, Vector256.LoadUnsafe(ref d, (nuint)((n * StripeSize) + 32)).AsUInt64(), Vector256.LoadUnsafe(ref s, (nuint)((n * 8) + 32)).AsUInt64());
            }

            a0.CopyTo(acc);
            a1.CopyTo(acc[4..]);
            return;
        }

        for (int n = 0; n < count; n++)
        {
            for (int i = 0; i < 8; i++)
            {
                ulong value = BinaryPrimitives.ReadUInt64LittleEndian(data[((n * StripeSize) + (8 * i))..]);
                ulong key = value ^ BinaryPrimitives.ReadUInt64LittleEndian(secret[((n * 8) + (8 * i))..]);
                acc[i ^ 1] += value;
                acc[i] += (key & 0xFFFFFFFFUL) * (key >> 32);
            }
        }
    }

    /// <summary>acc[i ^ 1] += data[i]; acc[i] += lo32(key[i]) × hi32(key[i]), four lanes at once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<ulong> Accumulate(Vector256<ulong> acc, Vector256<ulong> data, Vector256<ulong> secret)
    {
        Vector256<ulong> key = data ^ secret;
        Vector256<ulong> product = Avx2.Multiply(key.AsUInt32(), Avx2.ShiftRightLogical(key, 32).AsUInt32());
        Vector256<ulong> swapped = Avx2.Shuffle(data.AsUInt32(), 0b01_00_11_10).AsUInt64();
        return acc + swapped + product;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Scramble(Span<ulong> acc, ReadOnlySpan<byte> secret)
    {
        for (int i = 0; i < 8; i++)
        {
            ulong a = acc[i];
            a ^= a >> 47;
            a ^= BinaryPrimitives.ReadUInt64LittleEndian(secret[(8 * i)..]);
            acc[i] = a * Prime32_1;
        }
    }

    private static ulong Fold(ulong a, ulong b)
    {
        ulong high = Math.BigMul(a, b, out ulong low);
        return low ^ high;
    }
}
