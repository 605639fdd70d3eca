using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace NativeReft.Backends.Cpu;

/// <summary>
/// The float inner loop of MatMul: dot products of one input row with four weight rows at a time, so each load
/// of x serves four FMAs and four independent accumulator chains hide FMA latency. Decode is memory bound, and
/// this streams W at close to the bandwidth a single core gets.
/// </summary>
internal static class DotKernels
{
    /// <summary>output[j] = dot(x, w[j * k .. (j + 1) * k]) for j in [start, end).</summary>
    public static void DotRows(ReadOnlySpan<float> x, ReadOnlySpan<float> w, Span<float> output, int k, int start, int end)
    {
        ref float xs = ref MemoryMarshal.GetReference(x);
        ref float ws = ref MemoryMarshal.GetReference(w);
        int j = start;
        if (Vector256.IsHardwareAccelerated && k >= Vector256<float>.Count)
        {
            for (; j + 4 <= end; j += 4)
            {
                ref float w0 = ref Unsafe.Add(ref ws, (nint)j * k);
                ref float w1 = ref Unsafe.Add(ref w0, k);
                ref float w2 = ref Unsafe.Add(ref w1, k);
                ref float w3 = ref Unsafe.Add(ref w2, k);
                Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;
                int p = 0;
                for (; p <= k - Vector256<float>.Count; p += Vector256<float>.Count)
                {
                    var xv = Vector256.LoadUnsafe(ref xs, (nuint)p);
                    a0 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref w0, (nuint)p), xv, a0);
                    a1 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref w1, (nuint)p), xv, a1);
                    a2 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref w2, (nuint)p), xv, a2);
                    a3 = Vector256.FusedMultiplyAdd(Vector256.LoadUnsafe(ref w3, (nuint)p), xv, a3);
                }
                float s0 = Vector256.Sum(a0), s1 = Vector256.Sum(a1), s2 = Vector256.Sum(a2), s3 = Vector256.Sum(a3);
                for (; p < k; p++)
                {
                    float xp = Unsafe.Add(ref xs, p);
                    s0 += Unsafe.Add(ref w0, p) * xp;
                    s1 += Unsafe.Add(ref w1, p) * xp;
                    s2 += Unsafe.Add(ref w2, p) * xp;
                    s3 += Unsafe.Add(ref w3, p) * xp;
                }
                output[j] = s0;
                output[j + 1] = s1;
                output[j + 2] = s2;
                output[j + 3] = s3;
            }
        }
        for (; j < end; j++)
        {
            output[j] = System.Numerics.Tensors.TensorPrimitives.Dot(x, w.Slice(j * k, k));
        }
    }
}
