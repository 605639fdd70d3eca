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

    /// <inheritdoc />
    public void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dQ, Tensor dK, Tensor dV,
        AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        shape.Validate();
        var (B, Tq, Tk, stride, offset) = (shape.Batch, shape.QueryLength, shape.KeyLength, shape.KeyStride, shape.QueryOffset);
        int H = shape.Heads, KvH = shape.KvHeads, hs = shape.HeadSize, kvMul = H / KvH;
        RequireSameShape(q, dQ, "attention backward");
        RequireSameShape(q, dOut, "attention backward");
        RequireSameShape(k, dK, "attention backward");
        RequireSameShape(v, dV, "attention backward");
        T[] qd = Cast(q).Data, kd = Cast(k).Data, vd = Cast(v).Data, dod = Cast(dOut).Data;
        T[] dqd = Cast(dQ).Data, dkd = Cast(dK).Data, dvd = Cast(dV).Data;
        int qWidth = H * hs, kvWidth = KvH * hs;
        bool[]? mask = keyMask.IsEmpty ? null : keyMask.ToArray();
        Array.Clear(dqd);
        Array.Clear(dkd);
        Array.Clear(dvd);
        T scale = T.One / T.Sqrt(T.CreateTruncating(hs));
        // One (sequence, KV head) per work item: every query head that reads a KV head accumulates into its dK and
        // dV, so grouping by KV head keeps those sums on one thread (no atomics, a fixed summation order).
        ParallelChunks(B * KvH, 8L * kvMul * Tq * Tk * hs, (start, end) =>
        {
            var p = new T[Tk];
            var dp = new T[Tk];
            for (int item = start; item < end; item++)
            {
                int b = item / KvH, kvh = item % KvH;
                for (int h = kvh * kvMul; h < (kvh + 1) * kvMul; h++)
                {
                    for (int t = 0; t < Tq; t++)
                    {
                        int qOffset = (b * Tq + t) * qWidth + h * hs;
                        ReadOnlySpan<T> qRow = qd.AsSpan(qOffset, hs);
                        ReadOnlySpan<T> dO = dod.AsSpan(qOffset, hs);
                        int last = offset + t;
                        T max = T.NegativeInfinity;
                        for (int j = 0; j <= last; j++)
                        {
                            int kOffset = (b * stride + j) * kvWidth + kvh * hs;
                            p[j] = mask is not null && !mask[b * stride + j]
                                ? T.NegativeInfinity
                                : TensorPrimitives.Dot<T>(qRow, kd.AsSpan(kOffset, hs)) * scale;
                            max = T.Max(max, p[j]);
                        }
                        if (T.IsNegativeInfinity(max))
                        {
                            continue; // the forward output was zero, independent of q, k and v
                        }
                        T sum = T.Zero;
                        for (int j = 0; j <= last; j++)
                        {
                            p[j] = T.IsNegativeInfinity(p[j]) ? T.Zero : T.Exp(p[j] - max);
                            sum += p[j];
                        }
                        T weighted = T.Zero; // sum_j p_j dp_j
                        for (int j = 0; j <= last; j++)
                        {
                            p[j] /= sum;
                            dp[j] = p[j] == T.Zero ? T.Zero : TensorPrimitives.Dot<T>(dO, vd.AsSpan((b * stride + j) * kvWidth + kvh * hs, hs));
                            weighted += p[j] * dp[j];
                        }
                        Span<T> dqRow = dqd.AsSpan(qOffset, hs);
                        for (int j = 0; j <= last; j++)
                        {
                            if (p[j] == T.Zero)
                            {
                                continue;
                            }
                            int kvOffset = (b * stride + j) * kvWidth + kvh * hs;
                            T ds = p[j] * (dp[j] - weighted) * scale; // d(score_j), through the softmax and the scale
                            TensorPrimitives.MultiplyAdd<T>(kd.AsSpan(kvOffset, hs), ds, dqRow, dqRow);
                            Span<T> dkRow = dkd.AsSpan(kvOffset, hs);
                            TensorPrimitives.MultiplyAdd<T>(qRow, ds, dkRow, dkRow);
                            Span<T> dvRow = dvd.AsSpan(kvOffset, hs);
                            TensorPrimitives.MultiplyAdd<T>(dO, p[j], dvRow, dvRow);
                        }
                    }
                }
            }
        });
    }
}
