using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        shape.Validate();
        var (B, Tq, Tk, stride, offset) = (shape.Batch, shape.QueryLength, shape.KeyLength, shape.KeyStride, shape.QueryOffset);
        int H = shape.Heads, hs = shape.HeadSize, kvMul = shape.Heads / shape.KvHeads;
        T[] qd = Cast(q).Data, kd = Cast(k).Data, vd = Cast(v).Data, od = Cast(output).Data;
        int qWidth = H * hs, kvWidth = shape.KvHeads * hs;
        if (q.Rows != B * Tq || q.Columns != qWidth || output.Rows != B * Tq || output.Columns != qWidth
            || k.Rows != B * stride || v.Rows != B * stride || k.Columns != kvWidth || v.Columns != kvWidth)
        {
            throw new ArgumentException($"attention: q {q.ShapeText}, k {k.ShapeText}, v {v.ShapeText}, out {output.ShapeText} do not fit {shape}");
        }
        if (!keyMask.IsEmpty && keyMask.Length != B * stride)
        {
            throw new ArgumentException($"attention: key mask has {keyMask.Length} entries, expected {B * stride}");
        }
        bool[]? mask = keyMask.IsEmpty ? null : keyMask.ToArray();
        T scale = T.One / T.Sqrt(T.CreateTruncating(hs));
        ParallelChunks(B * H, 4L * Tq * Tk * hs / 2, (start, end) =>
        {
            var scores = new T[Tk];
            for (int bh = start; bh < end; bh++)
            {
                int b = bh / H, h = bh % H, kvh = h / kvMul;
                for (int t = 0; t < Tq; t++)
                {
                    ReadOnlySpan<T> qRow = qd.AsSpan((b * Tq + t) * qWidth + h * hs, hs);
                    Span<T> outRow = od.AsSpan((b * Tq + t) * qWidth + h * hs, hs);
                    int last = offset + t; // causal: keys 0..last
                    T max = T.NegativeInfinity;
                    for (int j = 0; j <= last; j++)
                    {
                        long kRow = (long)(b * stride + j);
                        if (mask is not null && !mask[kRow])
                        {
                            scores[j] = T.NegativeInfinity;
                            continue;
                        }
                        scores[j] = TensorPrimitives.Dot<T>(qRow, kd.AsSpan((int)(kRow * kvWidth) + kvh * hs, hs)) * scale;
                        max = T.Max(max, scores[j]);
                    }
                    outRow.Clear();
                    if (T.IsNegativeInfinity(max))
                    {
                        continue; // every key masked: a padding query, output stays zero
                    }
                    T sum = T.Zero;
                    for (int j = 0; j <= last; j++)
                    {
                        scores[j] = T.IsNegativeInfinity(scores[j]) ? T.Zero : T.Exp(scores[j] - max);
                        sum += scores[j];
                    }
                    for (int j = 0; j <= last; j++)
                    {
                        if (scores[j] != T.Zero)
                        {
                            T p = scores[j] / sum;
                            ReadOnlySpan<T> vRow = vd.AsSpan((b * stride + j) * kvWidth + kvh * hs, hs);
                            TensorPrimitives.MultiplyAdd<T>(vRow, p, outRow, outRow);
                        }
                    }
                }
            }
        });
    }
}
