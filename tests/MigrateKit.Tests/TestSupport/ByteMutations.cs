using System;
using CsCheck;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace MigrateKit.Tests.TestSupport;

/// <summary>Generators and checks for property tests of decoders fed arbitrary bytes.</summary>
internal static class ByteMutations
{
    /// <summary>
    /// A valid input with up to eight bytes flipped, then kept, truncated or extended: random bytes
    /// rarely get past a magic number, mutations of a valid input reach the deeper checks.
    /// </summary>
    public static Gen<byte[]> Of(byte[] valid) => Gen.Select(
        Gen.Int[0, valid.Length - 1].Array[1, 8],
        Gen.Byte.Array[8],
        Gen.Int[0, 2],
        Gen.Int[0, valid.Length],
        Gen.Byte.Array[0, 64],
        (positions, values, mode, cut, tail) =>
        {
            byte[] bytes = (byte[])valid.Clone();
            for (int i = 0; i < positions.Length; i++)
            {
                bytes[positions[i]] ^= values[i];
            }

            return mode switch
            {
                1 => bytes[..cut],
                2 => [.. bytes, .. tail],
                _ => bytes,
            };
        });

    /// <summary>Fails unless <paramref name="decode"/> returns or throws exactly <typeparamref name="TException"/> on every generated input.</summary>
    public static void DecodeOnlyThrows<TException>(this Gen<byte[]> inputs, Action<byte[]> decode, long iterations = 10_000)
        where TException : Exception
    {
        inputs.Sample(
            input =>
            {
                try
                {
                    decode(input);
                }
                catch (Exception ex) when (ex.GetType() != typeof(TException))
                {
                    Assert.Fail($"{ex.GetType().Name} on {Convert.ToHexString(input)}: {ex}");
                }
                catch (TException)
                {
                    // The documented failure.
                }
            },
            iter: iterations,
            threads: 1);
    }
}
