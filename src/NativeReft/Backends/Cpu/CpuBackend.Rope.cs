using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void Rope(Tensor x, Tensor cos, Tensor sin, ReadOnlySpan<int> positions, int heads, bool inverse = false)
    {
        var xs = Cast(x);
        var c = Cast(cos);
        var s = Cast(sin);
        if (xs.Rows != positions.Length || xs.Columns % heads != 0)
        {
            throw new ArgumentException($"rope: x {xs.ShapeText} with {positions.Length} positions and {heads} heads");
        }
        int headSize = xs.Columns / heads;
        int half = headSize / 2;
        if (c.Columns != half || s.Columns != half)
        {
            throw new ArgumentException($"rope: tables {c.ShapeText} do not match head size {headSize}");
        }
        for (int r = 0; r < positions.Length; r++)
        {
            int p = positions[r];
            if ((uint)p >= (uint)c.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(positions), p, $"position beyond the RoPE table ({c.Rows} positions)");
            }
            Span<T> cosRow = c.Row(p);
            Span<T> sinRow = s.Row(p);
            Span<T> row = xs.Row(r);
            for (int h = 0; h < heads; h++)
            {
                Span<T> head = row.Slice(h * headSize, headSize);
                for (int i = 0; i < half; i++)
                {
                    T a = head[i], b = head[i + half];
                    T sine = inverse ? -sinRow[i] : sinRow[i]; // the inverse rotation is the transpose
                    head[i] = a * cosRow[i] - b * sine;
                    head[i + half] = b * cosRow[i] + a * sine;
                }
            }
        }
    }
}
