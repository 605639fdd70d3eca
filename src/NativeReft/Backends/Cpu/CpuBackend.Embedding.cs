using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void Embedding(Tensor table, ReadOnlySpan<int> tokens, Tensor output)
    {
        var t = Cast(table);
        var o = Cast(output);
        if (o.Rows != tokens.Length || o.Columns != t.Columns)
        {
            throw new ArgumentException($"embedding: {tokens.Length} tokens into {o.ShapeText} from table {t.ShapeText}");
        }
        for (int i = 0; i < tokens.Length; i++)
        {
            if ((uint)tokens[i] >= (uint)t.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), tokens[i], $"token id outside the vocabulary (0..{t.Rows - 1})");
            }
            t.Row(tokens[i]).CopyTo(o.Row(i));
        }
    }
}
