using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void MatMul(Tensor x, Tensor weight, Tensor output) => MatMul(x, weight, null, output);

    /// <inheritdoc />
    public void MatMulAdd(Tensor x, Tensor weight, Tensor residual, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(residual);
        RequireSameShape(residual, output, "matmul + residual");
        MatMul(x, weight, Cast(residual), output);
    }

    // output = [residual +] x weight^T; output may be the residual: each element's residual is read before the
    // element is written (a block's residual values are set aside first).
    private void MatMul(Tensor x, Tensor weight, CpuTensor<T>? residual, Tensor output)
    {
        var a = Cast(x);
        var w = Cast(weight);
        var o = Cast(output);
        int m = a.Rows, k = a.Columns, n = w.Rows;
        if (w.Columns != k || o.Rows != m || o.Columns != n)
        {
            throw new ArgumentException($"matmul: x {a.ShapeText} times weight {w.ShapeText}^T does not fit output {o.ShapeText}");
        }
        T[] ad = a.Data, wd = w.Data, od = o.Data;
        T[]? rd = residual?.Data;
        // Split over weight rows: each worker streams its own slice of W once and reuses it for every row of x,
        // which is what decode (m = 1, memory bound) and prefill (m > 1) both want.
        ParallelChunks(n, 2L * m * k, (start, end) =>
        {
            const int block = 16; // weight rows kept hot in L1/L2 while all of x passes over them
            Span<T> added = stackalloc T[block];
            for (int j0 = start; j0 < end; j0 += block)
            {
                int j1 = Math.Min(end, j0 + block);
                for (int i = 0; i < m; i++)
                {
                    if (rd is not null)
                    {
                        rd.AsSpan(i * n + j0, j1 - j0).CopyTo(added);
                    }
                    if (typeof(T) == typeof(float))
                    {
                        DotKernels.DotRows(Floats(ad).AsSpan(i * k, k), Floats(wd), Floats(od).AsSpan(i * n, n), k, j0, j1);
                    }
                    else
                    {
                        ReadOnlySpan<T> xi = ad.AsSpan(i * k, k);
                        Span<T> oi = od.AsSpan(i * n, n);
                        for (int j = j0; j < j1; j++)
                        {
                            oi[j] = TensorPrimitives.Dot<T>(xi, wd.AsSpan(j * k, k));
                        }
                    }
                    if (rd is not null)
                    {
                        var segment = od.AsSpan(i * n + j0, j1 - j0);
                        TensorPrimitives.Add<T>(added[..(j1 - j0)], segment, segment);
                    }
                }
            }
        });
    }

    /// <inheritdoc />
    public void MatMulInputGrad(Tensor dOut, Tensor weight, Tensor dX, bool accumulate = false)
    {
        var g = Cast(dOut);
        var w = Cast(weight);
        var o = Cast(dX);
        int m = g.Rows, n = g.Columns, k = w.Columns;
        if (w.Rows != n || o.Rows != m || o.Columns != k)
        {
            throw new ArgumentException($"matmul input grad: dOut {g.ShapeText} times weight {w.ShapeText} does not fit dX {o.ShapeText}");
        }
        T[] gd = g.Data, wd = w.Data, od = o.Data;
        // dX[i, :] = sum_j dOut[i, j] * W[j, :], an axpy per (i, j): rows of dX are independent, so split over i.
        ParallelChunks(m, 2L * n * k, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                Span<T> oi = od.AsSpan(i * k, k);
                if (!accumulate)
                {
                    oi.Clear();
                }
                for (int j = 0; j < n; j++)
                {
                    T gij = gd[i * n + j];
                    if (gij != T.Zero)
                    {
                        TensorPrimitives.MultiplyAdd<T>(wd.AsSpan(j * k, k), gij, oi, oi);
                    }
                }
            }
        });
    }

    // Reinterprets T[] as float[] on the float path (T is float there, so this is the same array).
    private static float[] Floats(T[] data) => System.Runtime.CompilerServices.Unsafe.As<float[]>(data);
}
