using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// <see cref="Blas.LinearAdd"/> (a Linear layer with the residual add fused: cuBLASLt's separate C on a GPU, or
/// cuBLAS in place) against the CPU backend's MatMulAdd on the same bf16 inputs, into a separate output and in
/// place: one suite, made concrete per runtime (LinearAddGpuTests, LinearAddEmulatorTests).
/// </summary>
public abstract class LinearAddSuite : KernelSuite<Blas>
{
    private protected override Blas CreateKernels(IDeviceRuntime device) => new(device);

    [TestCase(7, 33, 129)]
    [TestCase(64, 256, 96)]
    public void The_residual_is_added_in_the_gemm_apart_and_in_place(int m, int k, int n)
    {
        var x = RandomBFloat16(m * 3 + k, (long)m * k);
        var w = RandomBFloat16(n * 5 + k, (long)n * k);
        var residual = RandomBFloat16(m * 7 + n, (long)m * n, 4f);
        using var xd = Device.Upload<BFloat16>(x);
        using var wd = Device.Upload<BFloat16>(w);
        using var rd = Device.Upload<BFloat16>(residual);
        using var apart = Device.Allocate<BFloat16>((long)m * n);
        using var inPlace = Device.Upload<BFloat16>(residual);
        Kernels.LinearAdd(xd.View, wd.View, rd.View, apart.View, m, k, n, Stream);
        Kernels.LinearAdd(xd.View, wd.View, inPlace.View, inPlace.View, m, k, n, Stream);
        Stream.Synchronize();

        var expected = Cpu((long)m * n, cpu =>
        {
            var output = cpu.Zeros(m, n);
            cpu.MatMulAdd(cpu.Upload(Floats(x), m, k), cpu.Upload(Floats(w), n, k), cpu.Upload(Floats(residual), m, n), output);
            return output;
        });
        // fp32 accumulation in another order, then one bf16 rounding of the sum.
        var tolerance = new Tolerance(2e-5 * Math.Sqrt(k), 1.0 / 256);
        tolerance.AssertClose(Floats(apart), expected, "residual + x w^T into a separate output");
        tolerance.AssertClose(Floats(inPlace), expected, "residual + x w^T in place");
        Assert.That(rd.ToArray().Select(v => v.Bits), Is.EqualTo(residual.Select(v => v.Bits)), "the residual is kept when the output is apart");
        Assert.That(Kernels.SeparateAddendFallback, Is.Null, "cuBLASLt took the separate addend");
    }

    [Test]
    public void Shapes_are_checked()
    {
        using var x = Device.Allocate<BFloat16>(12);
        using var w = Device.Allocate<BFloat16>(8);
        using var output = Device.Allocate<BFloat16>(6);
        Assert.Throws<ArgumentException>(() => Kernels.LinearAdd(x.View, w.View, output.View.Slice(1), output.View, 3, 4, 2, Stream));
    }
}
