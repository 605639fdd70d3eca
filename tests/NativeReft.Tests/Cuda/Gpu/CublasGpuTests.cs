using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda.Gpu;

/// <summary>
/// cuBLAS and cuBLASLt bf16 GEMMs against the CPU backend's MatMul (the numerical reference) on the same
/// bf16-rounded inputs, so the only difference left is the order of the fp32 accumulation.
/// </summary>
[Category("Gpu")]
public sealed class CublasGpuTests
{
    private CudaRuntime runtime = null!;
    private Blas blas = null!;
    private DeviceStream stream = null!;

    [OneTimeSetUp]
    public void CreateHandle()
    {
        runtime = Gpu.Runtime;
        blas = new Blas(runtime);
        stream = runtime.CreateStream();
    }

    [OneTimeTearDown]
    public void DestroyHandle()
    {
        stream?.Dispose();
        blas?.Dispose();
    }

    // fp32 accumulation of k exact bf16 products in another order: error grows like sqrt(k) ulps of the partial
    // sums. Wrong layouts or transposes give errors of order 1, far outside this.
    private static Tolerance Fp32Output(int k) => new(2e-5 * Math.Sqrt(k), 1e-4);

    // A bf16 output adds one rounding: half an ulp, 2^-9 relative.
    private static Tolerance Bf16Output(int k) => new(2e-5 * Math.Sqrt(k), 1.0 / 256);

    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 129)]
    [TestCase(33, 129, 7)]
    [TestCase(64, 4096, 8)]
    [TestCase(129, 257, 200)]
    public void Bf16_linear_with_fp32_output_matches_the_cpu_matmul(int m, int k, int n)
    {
        var (x, w) = Inputs(m, k, n);
        using var xd = runtime.Upload<BFloat16>(x);
        using var wd = runtime.Upload<BFloat16>(w);
        using var output = runtime.Allocate<float>(m * n);
        blas.Linear(xd.View, wd.View, output.View, m, k, n, stream);
        stream.Synchronize();
        Fp32Output(k).AssertClose(output.ToArray(), CpuMatMul(x, w, m, k, n), $"cublasGemmEx ({m}, {k}) x ({n}, {k})^T");
    }

    [TestCase(7, 33, 129)]
    [TestCase(64, 1024, 96)]
    public void Bf16_linear_with_bf16_output_matches_the_cpu_matmul(int m, int k, int n)
    {
        var (x, w) = Inputs(m, k, n);
        using var xd = runtime.Upload<BFloat16>(x);
        using var wd = runtime.Upload<BFloat16>(w);
        using var output = runtime.Allocate<BFloat16>(m * n);
        blas.Linear(xd.View, wd.View, output.View, m, k, n, stream);
        stream.Synchronize();
        Bf16Output(k).AssertClose(output.ToArray().Select(v => v.ToFloat()).ToArray(), CpuMatMul(x, w, m, k, n), "cublasGemmEx bf16 -> bf16");
    }

    [Test]
    public void Beta_one_accumulates_into_the_output()
    {
        const int m = 5, k = 17, n = 9;
        var (x, w) = Inputs(m, k, n);
        using var xd = runtime.Upload<BFloat16>(x);
        using var wd = runtime.Upload<BFloat16>(w);
        using var output = runtime.Upload<float>(Enumerable.Repeat(1f, m * n).ToArray());
        blas.Linear(xd.View, wd.View, output.View, m, k, n, stream, alpha: 1, beta: 1);
        stream.Synchronize();
        Fp32Output(k).AssertClose(output.ToArray(), CpuMatMul(x, w, m, k, n).Select(v => v + 1).ToArray(), "gradient accumulate");
    }

    [Test]
    public void Strided_batched_linear_matches_each_slice()
    {
        const int m = 5, k = 17, n = 9, batch = 3;
        var (a, c) = Inputs(batch * m, k, batch * n);
        using var ad = runtime.Upload<BFloat16>(a);
        using var cd = runtime.Upload<BFloat16>(c);
        using var output = runtime.Allocate<float>(batch * m * n);
        blas.LinearBatched(ad.View, cd.View, output.View, m, k, n, batch, stream);
        stream.Synchronize();
        var expected = Enumerable.Range(0, batch).SelectMany(b =>
            CpuMatMul(a[(b * m * k)..((b + 1) * m * k)], c[(b * n * k)..((b + 1) * n * k)], m, k, n)).ToArray();
        Fp32Output(k).AssertClose(output.ToArray(), expected, "cublasGemmStridedBatchedEx");
    }

    [Test]
    public void A_gemm_captured_in_a_graph_replays()
    {
        const int m = 16, k = 64, n = 32;
        var (x, w) = Inputs(m, k, n);
        using var xd = runtime.Upload<BFloat16>(x);
        using var wd = runtime.Upload<BFloat16>(w);
        using var output = runtime.Allocate<float>(m * n);
        // Warm up outside the capture (cuBLAS loads its kernels and picks an algorithm on the first call), as a
        // training loop does before it captures a step.
        blas.Linear(xd.View, wd.View, output.View, m, k, n, stream);
        output.Clear(stream);
        using var graph = runtime.Capture(stream, () => blas.Linear(xd.View, wd.View, output.View, m, k, n, stream));
        stream.Synchronize();
        Assert.That(output.ToArray(), Is.All.Zero, "capturing records the GEMM without running it");
        graph.Launch(stream);
        stream.Synchronize();
        Fp32Output(k).AssertClose(output.ToArray(), CpuMatMul(x, w, m, k, n), "captured cublasGemmEx");
    }

    [TestCase(MatmulEpilogue.None)]
    [TestCase(MatmulEpilogue.Bias)]
    [TestCase(MatmulEpilogue.ReluBias)]
    public void CublasLt_linear_with_an_epilogue_matches_the_cpu(MatmulEpilogue epilogue)
    {
        const int m = 33, k = 256, n = 72;
        var (x, w) = Inputs(m, k, n);
        var bias = Gpu.RandomFloats(99, n);
        using var lt = new BlasLt(runtime);
        using var xd = runtime.Upload<BFloat16>(x);
        using var wd = runtime.Upload<BFloat16>(w);
        using var biasd = runtime.Upload<float>(bias);
        using var output = runtime.Allocate<float>(m * n);
        var biasView = epilogue == MatmulEpilogue.None ? default : biasd.View;
        lt.Linear(xd.View, wd.View, biasView, output.View, m, k, n, epilogue, stream);
        stream.Synchronize();
        var expected = CpuMatMul(x, w, m, k, n).Select((v, i) => epilogue switch
        {
            MatmulEpilogue.Bias => v + bias[i % n],
            MatmulEpilogue.ReluBias => Math.Max(v + bias[i % n], 0),
            _ => v,
        }).ToArray();
        Fp32Output(k).AssertClose(output.ToArray(), expected, $"cublasLtMatmul {epilogue}");
    }

    private static (BFloat16[] X, BFloat16[] W) Inputs(int m, int k, int n) =>
        (Gpu.RandomFloats(m * 7 + k, m * k).Select(BFloat16.FromFloat).ToArray(),
         Gpu.RandomFloats(n * 11 + k, n * k).Select(BFloat16.FromFloat).ToArray());

    /// <summary>x w^T on the CPU backend (float32), from the same bf16 values.</summary>
    private static double[] CpuMatMul(BFloat16[] x, BFloat16[] w, int m, int k, int n)
    {
        using var cpu = new CpuBackend<float>(threads: 1);
        using var xt = cpu.Upload(x.Select(v => v.ToFloat()).ToArray(), m, k);
        using var wt = cpu.Upload(w.Select(v => v.ToFloat()).ToArray(), n, k);
        using var ot = cpu.Zeros(m, n);
        cpu.MatMul(xt, wt, ot);
        var result = new float[m * n];
        cpu.Download(ot, result);
        return result.Select(v => (double)v).ToArray();
    }
}
