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
}
