using NativeReft.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void SwiGlu(Tensor gate, Tensor up, Tensor output)
    {
        RequireSameShape(gate, up, "swiglu");
        RequireSameShape(gate, output, "swiglu");
        T[] g = Cast(gate).Data, u = Cast(up).Data, o = Cast(output).Data;
        // silu(g) * u = g * sigmoid(g) * u, built in a scratch segment so output may alias gate or up.
        ParallelChunks(g.Length, 16, (start, end) =>
        {
            Span<T> scratch = stackalloc T[512];
            for (int i = start; i < end; i += scratch.Length)
            {
                int n = Math.Min(scratch.Length, end - i);
                Span<T> s = scratch[..n];
                TensorPrimitives.Sigmoid<T>(g.AsSpan(i, n), s);
                TensorPrimitives.Multiply<T>(s, g.AsSpan(i, n), s);
                TensorPrimitives.Multiply<T>(s, u.AsSpan(i, n), o.AsSpan(i, n));
            }
        });
    }

    /// <inheritdoc />
    public void SwiGluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp)
    {
        RequireSameShape(gate, up, "swiglu backward");
        RequireSameShape(gate, dOut, "swiglu backward");
        RequireSameShape(gate, dGate, "swiglu backward");
        RequireSameShape(gate, dUp, "swiglu backward");
        T[] g = Cast(gate).Data, u = Cast(up).Data, dy = Cast(dOut).Data, dg = Cast(dGate).Data, du = Cast(dUp).Data;
        ParallelChunks(g.Length, 16, (start, end) =>
        {
            for (int i = start; i < end; i++)
            {
                T sigmoid = T.One / (T.One + T.Exp(-g[i]));
                T silu = g[i] * sigmoid;
                T d = dy[i];
                du[i] = d * silu;
                dg[i] = d * u[i] * sigmoid * (T.One + g[i] * (T.One - sigmoid)); // silu' = s (1 + g (1 - s))
            }
        });
    }
}
