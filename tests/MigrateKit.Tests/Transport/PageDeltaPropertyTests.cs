using System;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using MigrateKit.Tests.TestSupport;
using MigrateKit.Transport;

namespace MigrateKit.Tests.Transport;

/// <summary>
/// PageDelta on generated pages: every delta it makes decodes to the current page, and any bytes
/// given to the decoder produce a page or a <see cref="MigrationProtocolException"/> that leaves
/// the page as it was, nothing else.
/// </summary>
[TestClass]
public sealed class PageDeltaPropertyTests
{
    private const int Page = MigrationProtocol.PageSize;

    /// <summary>A page and a version of it with some bytes rewritten: sparse, clustered or dense, at any offset.</summary>
    private static readonly Gen<(byte[] Previous, byte[] Current)> EditedPages = Gen.Select(
        Gen.Int[0, Page],
        Gen.Int[0, 600],
        Gen.Int[1, 64],
        Gen.Int,
        (length, edits, spread, seed) =>
        {
            var random = new Random(seed);
            byte[] previous = new byte[length];
            random.NextBytes(previous);
            byte[] current = (byte[])previous.Clone();
            int at = length == 0 ? 0 : random.Next(length);
            for (int i = 0; i < edits && length > 0; i++)
            {
                at = (at + random.Next(spread)) % length;
                current[at] = (byte)random.Next(256);
            }

            return (previous, current);
        });

    [TestMethod]
    public void EditedPages_DecodeToTheCurrentPageOrAreRefused()
    {
        EditedPages.Sample(
            pair =>
            {
                (byte[] previous, byte[] current) = pair;
                byte[] destination = new byte[Page + 16];
                int written = PageDelta.Encode(previous, current, destination);
                if (written < 0)
                {
                    // Refused only when a delta would not beat the raw page.
                    Assert.IsGreaterThan(current.Length / 4, Differing(previous, current), "A sparse edit was refused.");
                    return;
                }

                AssertDecodesTo(previous, destination.AsSpan(0, written), current);
            },
            iter: 5_000,
            threads: 1);
    }

    [TestMethod]
    public void UnrelatedPages_DecodeToTheCurrentPageOrAreRefused()
    {
        // Bytes from a four-value alphabet, so equal and unequal bytes interleave at every scale.
        Gen.Int[0, 512].SelectMany(n => Gen.Select(Gen.Byte[0, 3].Array[n], Gen.Byte[0, 3].Array[n])).Sample(
            pair =>
            {
                (byte[] previous, byte[] current) = pair;
                byte[] destination = new byte[previous.Length];
                int written = PageDelta.Encode(previous, current, destination);
                if (written >= 0)
                {
                    AssertDecodesTo(previous, destination.AsSpan(0, written), current);
                }
            },
            iter: 5_000,
            threads: 1);
    }

    [TestMethod]
    public void ArbitraryBytes_GiveAPageOrAProtocolViolation()
    {
        Gen.Select(Gen.Byte.Array[0, 64], Gen.Int[0, 64]).Sample(
            input => AssertDecodesCleanly(input.Item1, input.Item2),
            iter: 20_000,
            threads: 1);
    }

    [TestMethod]
    public void MutatedValidDeltas_GiveAPageOrAProtocolViolation()
    {
        (byte[] previous, byte[] current) = SamplePages.Create(SamplePageKind.Text);
        byte[] valid = PageDeltaTests.Encoded(previous, current);

        ByteMutations.Of(valid).Sample(input => AssertDecodesCleanly(input, Page), iter: 10_000, threads: 1);
    }

    /// <summary>Decodes into a page with guard bytes on both sides: a page or the typed rejection, the guards intact, a rejected delta leaving the page untouched.</summary>
    private static void AssertDecodesCleanly(byte[] delta, int pageLength)
    {
        byte[] buffer = new byte[pageLength + 32];
        buffer.AsSpan().Fill(0xA5);
        Span<byte> page = buffer.AsSpan(16, pageLength);
        try
        {
            PageDelta.Decode(delta, page);
        }
        catch (MigrationProtocolException)
        {
            Assert.IsTrue(page.IndexOfAnyExcept((byte)0xA5) < 0, $"A rejected delta changed the page: {Convert.ToHexString(delta)}.");
        }
        catch (Exception ex)
        {
            Assert.Fail($"{ex.GetType().Name} on {Convert.ToHexString(delta)} for a {pageLength}-byte page: {ex}");
        }

        Assert.IsTrue(buffer.AsSpan(0, 16).IndexOfAnyExcept((byte)0xA5) < 0 && buffer.AsSpan(16 + pageLength).IndexOfAnyExcept((byte)0xA5) < 0, $"Decode wrote outside the page: {Convert.ToHexString(delta)}.");
    }

    /// <summary>A delta shorter than the page that decodes, from the previous page, to the current one.</summary>
    private static void AssertDecodesTo(byte[] previous, ReadOnlySpan<byte> delta, byte[] current)
    {
        Assert.IsLessThan(Math.Max(current.Length, 1), delta.Length);
        byte[] page = (byte[])previous.Clone();
        PageDelta.Decode(delta, page);
        CollectionAssert.AreEqual(current, page);
    }

    private static int Differing(byte[] a, byte[] b)
    {
        int count = 0;
        for (int i = 0; i < a.Length; i++)
        {
            count += a[i] != b[i] ? 1 : 0;
        }

        return count;
    }
}
