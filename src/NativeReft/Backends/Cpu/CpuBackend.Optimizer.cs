using NativeReft.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void AdamW(Tensor parameter, Tensor gradient, Tensor m, Tensor v, in AdamWStep step)
    {
        RequireSameShape(parameter, gradient, "adamw");
        RequireSameShape(parameter, m, "adamw");
        RequireSameShape(parameter, v, "adamw");
        if (step.Step < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(step), step.Step, "AdamW steps count from 1");
        }
        T[] p = Cast(parameter).Data, g = Cast(gradient).Data, m1 = Cast(m).Data, m2 = Cast(v).Data;
        // Bias corrections in double: beta^t underflows gracefully and the factors stay exact enough.
        double c1 = 1 - Math.Pow(step.Beta1, step.Step);
        double c2 = 1 - Math.Pow(step.Beta2, step.Step);
        T b1 = T.CreateTruncating(step.Beta1), b2 = T.CreateTruncating(step.Beta2);
        T lr = T.CreateTruncating(step.LearningRate), eps = T.CreateTruncating(step.Epsilon);
        T decay = T.One - T.CreateTruncating(step.LearningRate * step.WeightDecay);
        T invC1 = T.CreateTruncating(1 / c1), invSqrtC2 = T.CreateTruncating(1 / Math.Sqrt(c2));
        for (int i = 0; i < p.Length; i++)
        {
            m1[i] = b1 * m1[i] + (T.One - b1) * g[i];
            m2[i] = b2 * m2[i] + (T.One - b2) * g[i] * g[i];
            T mHat = m1[i] * invC1;
            T denominator = T.Sqrt(m2[i]) * invSqrtC2 + eps;
            p[i] = p[i] * decay - lr * mHat / denominator; // decoupled decay, then the Adam step (torch's order)
        }
    }

    /// <inheritdoc />
    public void OrthonormalizeRows(Tensor matrix)
    {
        var a = Cast(matrix);
        int r = a.Rows, d = a.Columns;
        if (r > d)
        {
            throw new ArgumentException($"cannot make {r} rows of width {d} orthonormal (rank must not exceed the model dimension)");
        }
        // Modified Gram-Schmidt, twice ("twice is enough"): after the second pass R R^T = I to rounding.
        for (int pass = 0; pass < 2; pass++)
        {
            for (int i = 0; i < r; i++)
            {
                Span<T> row = a.Row(i);
                for (int j = 0; j < i; j++)
                {
                    Span<T> previous = a.Row(j);
                    T projection = TensorPrimitives.Dot<T>(row, previous);
                    TensorPrimitives.MultiplyAdd<T>(previous, -projection, row, row);
                }
                T norm = T.Sqrt(TensorPrimitives.SumOfSquares<T>(row));
                if (!(norm > T.Zero) || !T.IsFinite(norm))
                {
                    throw new InvalidOperationException($"row {i} of the {r}x{d} projection is degenerate (norm {norm}); it cannot be made orthonormal");
                }
                TensorPrimitives.Divide<T>(row, norm, row);
            }
        }
    }
}
