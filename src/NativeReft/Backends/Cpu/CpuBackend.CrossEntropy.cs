using NativeReft.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public double CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale)
    {
        var z = Cast(logits);
        var dz = Cast(dLogits);
        RequireSameShape(logits, dLogits, "cross-entropy");
        if (targets.Length != z.Rows)
        {
            throw new ArgumentException($"cross-entropy: {targets.Length} targets for {z.Rows} rows");
        }
        int vocab = z.Columns;
        int[] target = targets.ToArray();
        var losses = new double[z.Rows];
        T scale = T.CreateTruncating(gradScale);
        ParallelChunks(z.Rows, 8L * vocab, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                Span<T> grad = dz.Row(r);
                if (target[r] < 0)
                {
                    grad.Clear();
                    continue;
                }
                if (target[r] >= vocab)
                {
                    throw new ArgumentOutOfRangeException(nameof(targets), target[r], $"target outside the vocabulary (0..{vocab - 1})");
                }
                // loss = logsumexp(z) - z[target]; d/dz = softmax(z) - onehot(target)
                Span<T> row = z.Row(r);
                T max = TensorPrimitives.Max<T>(row);
                T targetLogit = row[target[r]]; // read before grad, which may be row itself, overwrites it
                T sum = T.Zero;
                for (int j = 0; j < vocab; j++)
                {
                    grad[j] = T.Exp(row[j] - max);
                    sum += grad[j];
                }
                losses[r] = double.CreateTruncating(T.Log(sum) + max - targetLogit);
                TensorPrimitives.Multiply<T>(grad, scale / sum, grad);
                grad[target[r]] -= scale;
            }
        });
        return losses.Sum();
    }
}
