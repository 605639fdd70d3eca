using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    {
        var xs = Cast(x);
        var w = Cast(weight);
        var o = Cast(output);
        RequireSameShape(x, output, "rmsnorm");
        if (w.Length != xs.Columns)
        {
            throw new ArgumentException($"rmsnorm: weight {w.ShapeText} does not match rows of width {xs.Columns}");
        }
        int c = xs.Columns;
        T epsilon = T.CreateTruncating(eps);
        ParallelChunks(xs.Rows, 4L * c, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                Span<T> row = xs.Row(r);
                Span<T> dst = o.Row(r);
                // Same order as HF and llama2.c: weight * (x * rstd), rstd from the mean square plus eps.
                T meanSquare = TensorPrimitives.SumOfSquares<T>(row) / T.CreateTruncating(c);
                T rstd = T.One / T.Sqrt(meanSquare + epsilon);
                TensorPrimitives.Multiply<T>(row, rstd, dst);
                TensorPrimitives.Multiply<T>(dst, w.Data, dst);
            }
        });
    }

    /// <inheritdoc />
    public void RmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dOut, Tensor dX, bool accumulate = false)
    {
        var xs = Cast(x);
        var w = Cast(weight).Data;
        var dy = Cast(dOut);
        var dx = Cast(dX);
        RequireSameShape(x, dOut, "rmsnorm backward");
        RequireSameShape(x, dX, "rmsnorm backward");
        int c = xs.Columns;
        T epsilon = T.CreateTruncating(eps);
        T n = T.CreateTruncating(c);
        ParallelChunks(xs.Rows, 8L * c, (start, end) =>
        {
            for (int r = start; r < end; r++)
            {
                Span<T> row = xs.Row(r), g = dy.Row(r), o = dx.Row(r);
                T rstd = T.One / T.Sqrt(TensorPrimitives.SumOfSquares<T>(row) / n + epsilon);
                // y = w * x * rstd; dx = rstd * (w*dy) - x * rstd^3 * mean(x * w * dy)
                T dot = T.Zero;
                for (int j = 0; j < c; j++)
                {
                    dot += row[j] * w[j] * g[j];
                }
                T coefficient = rstd * rstd * rstd * dot / n;
                for (int j = 0; j < c; j++)
                {
                    T grad = rstd * w[j] * g[j] - coefficient * row[j];
                    o[j] = accumulate ? o[j] + grad : grad;
                }
            }
        });
    }
}
