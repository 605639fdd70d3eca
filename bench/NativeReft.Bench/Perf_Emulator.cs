using BenchmarkDotNet.Attributes;
using NativeReft.Cuda;

namespace NativeReft.Bench;

/// <summary>
/// The CPU kernel emulator: one launch of 64 blocks x 256 threads (16,384 fibers) of kernels/elementwise.cu.
/// rowsumsq runs a block reduction (warp shuffles, shared memory, two __syncthreads per block); fill has no
/// barrier, so it measures fiber start-up and the scheduler alone. Runs synchronously (emulated streams).
/// </summary>
public class Perf_Emulator
{
    private const int Blocks = 64;
    private const int Threads = 256;

    private EmulatorRuntime runtime = null!;
    private ElementwiseKernels kernels = null!;
    private DeviceBuffer<float> x = null!;
    private DeviceBuffer<float> sums = null!;

    /// <summary>Row length of the rowsumsq launch (64 rows): one element per thread, and a LLaMA-7B row.</summary>
    [Params(256, 4096)]
    public int Columns { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        runtime = EmulatorRuntime.Create(check: false);
        kernels = new ElementwiseKernels(runtime);
        var rng = new Random(1);
        x = runtime.Upload<float>(Enumerable.Range(0, Blocks * Columns).Select(_ => (float)rng.NextDouble()).ToArray());
        sums = runtime.Allocate<float>(Blocks);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        sums.Dispose();
        x.Dispose();
        kernels.Dispose();
        runtime.Dispose();
    }

    [Benchmark(Baseline = true)]
    public void Fill() => kernels.Fill(x.View.Slice(0, Blocks * Threads), 1f, runtime.DefaultStream);

    [Benchmark]
    public void RowSumSquares() => kernels.RowSumSquares(x, Blocks, Columns, sums, runtime.DefaultStream);
}
