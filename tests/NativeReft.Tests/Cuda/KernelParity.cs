using NativeReft.Cuda;
using NativeReft.Backends.Cpu;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// What the kernel parity suites share: seeded bf16 inputs, the CPU reference (CpuBackend&lt;float&gt; run on the
/// same bf16-rounded inputs) and the tolerance table.
/// </summary>
internal static class KernelParity
{
    // Tolerances, with their reasons.
    // A bf16 output is fp32 arithmetic rounded once to bf16 (8 significant bits): at most half an ulp, 2^-9 of
    // the value, off the fp32 reference; rtol 2^-8 leaves room for the fp32 differences (summation order, FMA,
    // rsqrtf, expf) that can move a value across a rounding boundary. atol covers outputs near zero that come
    // from cancellation (rmsnorm backward's two terms, a rotation's two products): fp32 error of operands ~1.
    public static readonly Tolerance BFloat16Output = new(1e-5, 1.0 / 256);

    // rstd stays fp32: the sum of squares in another order (error ~ sqrt(C) ulps of the sum) and rsqrtf's
    // 2-ulp approximation on the GPU.
    public static Tolerance Rstd(int columns) => new(0, 4e-7 * (Math.Sqrt(columns) + 4));

    /// <summary>Seeded values scale * [-1, 1), rounded to bf16 (never zeros).</summary>
    public static BFloat16[] RandomBFloat16(int seed, long count, float scale = 1f, float shift = 0f)
    {
        var rng = new Random(seed);
        var values = new BFloat16[count];
        for (long i = 0; i < count; i++)
        {
            values[i] = BFloat16.FromFloat(shift + scale * (float)(rng.NextDouble() * 2 - 1));
        }
        return values;
    }

    public static float[] Floats(BFloat16[] values) => values.Select(v => v.ToFloat()).ToArray();

    public static float[] Floats(DeviceBuffer<BFloat16> buffer) => Floats(buffer.ToArray());

    public static double[] Doubles(float[] values) => values.Select(v => (double)v).ToArray();

    /// <summary>Runs <paramref name="op"/> on a fresh single-threaded CpuBackend&lt;float&gt; and downloads its result.</summary>
    public static double[] Cpu(long length, Func<CpuBackend<float>, Tensor> op)
    {
        using var cpu = new CpuBackend<float>(threads: 1);
        using var result = op(cpu);
        var output = new float[length];
        cpu.Download(result, output);
        return Doubles(output);
    }
}
