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
}
