namespace NativeReft.Tensors;

/// <summary>
/// A bfloat16 value: the top 16 bits of a float, as checkpoints and the CUDA kernels store activations. Storage
/// only: arithmetic widens to float. Two bytes and unmanaged, so device buffers and kernels share its layout
/// (the kernels' <c>struct bf16 { unsigned short bits; }</c>).
/// </summary>
public readonly record struct BFloat16(ushort Bits)
{
    /// <summary>Rounds <paramref name="value"/> to the nearest bfloat16 (ties to even; NaN stays NaN).</summary>
    public static BFloat16 FromFloat(float value) => new(DTypes.FloatToBF16(value));

    /// <summary>The exact float value.</summary>
    public float ToFloat() => DTypes.BF16ToFloat(Bits);

    /// <summary>Rounds a float to bfloat16.</summary>
    public static explicit operator BFloat16(float value) => FromFloat(value);

    /// <summary>Widens to float (exact).</summary>
    public static implicit operator float(BFloat16 value) => value.ToFloat();

    /// <inheritdoc />
    public override string ToString() => ToFloat().ToString(System.Globalization.CultureInfo.InvariantCulture);
}
