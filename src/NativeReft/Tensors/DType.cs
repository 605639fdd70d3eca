namespace NativeReft.Tensors;

/// <summary>Element types that appear in checkpoints and on backends.</summary>
public enum DType
{
    /// <summary>IEEE 754 single precision.</summary>
    F32,
    /// <summary>IEEE 754 double precision (the CPU backend's gradient-check mode).</summary>
    F64,
    /// <summary>IEEE 754 half precision.</summary>
    F16,
    /// <summary>bfloat16: the top 16 bits of an F32.</summary>
    BF16,
}

/// <summary>Sizes and conversions of <see cref="DType"/>.</summary>
public static class DTypes
{
    /// <summary>Bytes per element.</summary>
    public static int SizeOf(DType type) => type switch
    {
        DType.F32 => 4,
        DType.F64 => 8,
        DType.F16 or DType.BF16 => 2,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, null),
    };

    /// <summary>Widens a bfloat16 bit pattern to float (exact).</summary>
    public static float BF16ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    /// <summary>Rounds a float to bfloat16 (round to nearest even; NaN stays NaN).</summary>
    public static ushort FloatToBF16(float value)
    {
        uint bits = BitConverter.SingleToUInt32Bits(value);
        if (float.IsNaN(value))
        {
            return (ushort)((bits >> 16) | 0x40);
        }
        uint roundingBias = 0x7FFF + ((bits >> 16) & 1);
        return (ushort)((bits + roundingBias) >> 16);
    }

    /// <summary>
    /// Converts <paramref name="source"/> bytes holding <paramref name="type"/> elements (little-endian) to floats.
    /// </summary>
    public static void ToFloat(DType type, ReadOnlySpan<byte> source, Span<float> destination)
    {
        int n = destination.Length;
        if (source.Length != (long)n * SizeOf(type))
        {
            throw new ArgumentException($"{source.Length} bytes do not hold {n} {type} elements.", nameof(source));
        }
        switch (type)
        {
            case DType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(source).CopyTo(destination);
                break;
            case DType.F64:
                var doubles = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(source);
                for (int i = 0; i < n; i++)
                {
                    destination[i] = (float)doubles[i];
                }
                break;
            case DType.F16:
                System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(
                    System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(source), destination);
                break;
            case DType.BF16:
                var halves = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(source);
                for (int i = 0; i < n; i++)
                {
                    destination[i] = BF16ToFloat(halves[i]);
                }
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(type), type, null);
        }
    }
}
