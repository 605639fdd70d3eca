using NativeReft.Tensors;

namespace NativeReft.Cuda;

// The decoder's per-token ops: RMSNorm, the Linear layers (GEMMs), RoPE and SwiGLU, forward and backward.
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output)
    {
        var (xs, w, o) = (Cast(x), Cast(weight), Cast(output));
        using var op = Op("rmsnorm", OpWork.RmsNorm(xs.Rows, xs.Columns, DTypes.SizeOf(w.DType)));
        RequireSameShape(xs, o, "rmsnorm");
        if (w.DType == DType.F32)
        {
            rmsNorm.Forward(xs.BFloat16, w.Float, eps, xs.Rows, xs.Columns, o.BFloat16, default, Stream);
        }
        else
        {
            rmsNorm.Forward(xs.BFloat16, w.BFloat16, eps, xs.Rows, xs.Columns, o.BFloat16, default, Stream);
        }
    }

    /// <inheritdoc />
    public void AddRmsNorm(Tensor a, Tensor b, Tensor weight, float eps, Tensor sum, Tensor output)
    {
        var (x, y, w, s, o) = (Cast(a), Cast(b), Cast(weight), Cast(sum), Cast(output));
        using var op = Op("add + rmsnorm", OpWork.AddRmsNorm(x.Rows, x.Columns));
        RequireSameShape(x, y, "add + rmsnorm");
        RequireSameShape(x, s, "add + rmsnorm");
        RequireSameShape(x, o, "add + rmsnorm");
        if (w.DType != DType.BF16)
        {
            Add(a, b, sum); // an f32 norm weight (not a checkpoint's): the two ops
            RmsNorm(sum, weight, eps, output);
            return;
        }
        rmsNorm.AddForward(x.BFloat16, y.BFloat16, w.BFloat16, eps, x.Rows, x.Columns, s.BFloat16, o.BFloat16, default, Stream);
    }

    /// <inheritdoc />
    public void RmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dOut, Tensor dX, bool accumulate = false)
    {
        var (xs, w, dy, dx) = (Cast(x), Cast(weight), Cast(dOut), Cast(dX));
        using var op = Op("rmsnorm backward", OpWork.RmsNormBackward(xs.Rows, xs.Columns, DTypes.SizeOf(w.DType), accumulate));
        RequireSameShape(xs, dy, "rmsnorm backward");
        RequireSameShape(xs, dx, "rmsnorm backward");
        if (w.DType == DType.F32)
        {
            rmsNorm.Backward(xs.BFloat16, w.Float, default, eps, dy.BFloat16, xs.Rows, xs.Columns, dx.BFloat16, Stream, accumulate);
        }
        else
        {
            rmsNorm.Backward(xs.BFloat16, w.BFloat16, default, eps, dy.BFloat16, xs.Rows, xs.Columns, dx.BFloat16, Stream, accumulate);
        }
    }

    /// <inheritdoc />
    public void MatMul(Tensor x, Tensor weight, Tensor output)
    {
        var (xs, w, o) = (Cast(x), Cast(weight), Cast(output));
        using var op = Op("matmul", OpWork.Linear(xs.Rows, xs.Columns, w.Rows));
        RequireLinear(xs, w, o, "matmul");
        blas.Linear(xs.BFloat16, w.BFloat16, o.BFloat16, xs.Rows, xs.Columns, w.Rows, Stream);
    }

    /// <inheritdoc />
    public void MatMulAdd(Tensor x, Tensor weight, Tensor residual, Tensor output)
    {
        var (xs, w, r, o) = (Cast(x), Cast(weight), Cast(residual), Cast(output));
        using var op = Op("matmul + residual", OpWork.Linear(xs.Rows, xs.Columns, w.Rows, addend: true));
        RequireLinear(xs, w, o, "matmul + residual");
        RequireSameShape(r, o, "matmul + residual");
        blas.LinearAdd(xs.BFloat16, w.BFloat16, r.BFloat16, o.BFloat16, xs.Rows, xs.Columns, w.Rows, Stream);
    }

    /// <inheritdoc />
    public void MatMulInputGrad(Tensor dOut, Tensor weight, Tensor dX, bool accumulate = false)
    {
        var (dy, w, dx) = (Cast(dOut), Cast(weight), Cast(dX));
        using var op = Op("matmul backward", OpWork.LinearInputGrad(dy.Rows, w.Columns, w.Rows, accumulate));
        if (dy.Columns != w.Rows || dx.Columns != w.Columns || dx.Rows != dy.Rows)
        {
            throw new ArgumentException($"matmul input grad: dOut {dy.ShapeText}, weight {w.ShapeText}, dX {dx.ShapeText}");
        }
        // Accumulating is cuBLAS's beta = 1: the sum is formed in fp32 and rounded to bf16 once.
        blas.LinearInputGrad(dy.BFloat16, w.BFloat16, dx.BFloat16, dy.Rows, w.Columns, w.Rows, Stream, beta: accumulate ? 1 : 0);
    }

    // output (m, n) = x (m, k) weight^T with weight (n, k).
    private static void RequireLinear(CudaTensor x, CudaTensor weight, CudaTensor output, string what)
    {
        if (x.Columns != weight.Columns || output.Rows != x.Rows || output.Columns != weight.Rows)
        {
            throw new ArgumentException($"{what}: x {x.ShapeText}, weight {weight.ShapeText}, output {output.ShapeText}");
        }
    }

    /// <inheritdoc />
    public void Rope(Tensor x, Tensor cos, Tensor sin, ReadOnlySpan<int> positions, int heads, bool inverse = false)
    {
        var (xs, c, s) = (Cast(x), Cast(cos), Cast(sin));
        using var op = Op("rope", OpWork.Rope(xs.Rows, xs.Columns));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        if (xs.Rows != positions.Length || xs.Columns % heads != 0)
        {
            throw new ArgumentException($"rope: x {xs.ShapeText} does not hold {positions.Length} rows of {heads} heads");
        }
        RequireIndices(positions, c.Rows, "rope", "position");
        using var p = Stage(positions);
        int headSize = xs.Columns / heads;
        if (inverse)
        {
            rope.Backward(xs.BFloat16, c.Float, s.Float, p.View, heads, headSize, errorFlag.View, Stream);
        }
        else
        {
            rope.Forward(xs.BFloat16, c.Float, s.Float, p.View, heads, headSize, errorFlag.View, Stream);
        }
    }

    /// <inheritdoc />
    public void SwiGlu(Tensor gate, Tensor up, Tensor output)
    {
        var g = Cast(gate);
        using var op = Op("swiglu", OpWork.SwiGlu(g.Length));
        swiGlu.Forward(g.BFloat16, Cast(up).BFloat16, Cast(output).BFloat16, Stream);
    }

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp)
    {
        var g = Cast(gate);
        using var op = Op("swiglu backward", OpWork.SwiGluBackward(g.Length));
        swiGlu.Backward(g.BFloat16, Cast(up).BFloat16, Cast(dOut).BFloat16, Cast(dGate).BFloat16, Cast(dUp).BFloat16, Stream);
    }
}
