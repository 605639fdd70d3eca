using NativeReft.Tensors;

namespace NativeReft.IO.Gguf;

/// <summary>
/// One tensor of a GGUF file, as its info block describes it (after <see cref="GgufFile"/> has checked that it
/// lies inside the data section and that its type is loadable).
/// </summary>
/// <param name="Name">The GGUF name, e.g. <c>blk.0.attn_q.weight</c>.</param>
/// <param name="Dimensions">ggml's <c>ne</c>: the fastest-varying dimension (columns) first.</param>
/// <param name="DType">Element type.</param>
/// <param name="Offset">Absolute byte offset in the file (the data section's start plus the stored offset).</param>
public sealed record GgufTensorInfo(string Name, long[] Dimensions, DType DType, long Offset)
{
    /// <summary>Row-major shape, outermost first: <see cref="Dimensions"/> reversed.</summary>
    public int[] Shape { get; } = [.. Dimensions.Reverse().Select(d => checked((int)d))];

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; } = Dimensions.Aggregate(1L, (count, d) => checked(count * d));

    /// <summary>Bytes the tensor occupies.</summary>
    public long ByteLength => ElementCount * DTypes.SizeOf(DType);
}
