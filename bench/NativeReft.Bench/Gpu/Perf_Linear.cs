using BenchmarkDotNet.Attributes;
using NativeReft.Cuda;
using NativeReft.Tensors;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// The projections' bf16 GEMMs (fp32 accumulation) at the shape's sizes: the attention output projection
/// (dim x dim), the FFN's up projection (hidden x dim) and its input gradient, and the down projection (dim x
/// hidden) alone and with the residual add in its epilogue (Blas.LinearAdd: cuBLASLt, C and D apart), which
/// replaces the down projection plus Perf_RmsNorm's ResidualAdd. FLOPs 2 M N K.
/// </summary>
public class Perf_Linear : KernelBench
{
    private Blas blas = null!;
    private DeviceBuffer<BFloat16> x = null!;
    private DeviceBuffer<BFloat16> hidden = null!;
    private DeviceBuffer<BFloat16> wo = null!;
    private DeviceBuffer<BFloat16> wUp = null!;
    private DeviceBuffer<BFloat16> y = null!;

    protected override void SetUp()
    {
        var c = Config;
        blas = new Blas(Device);
        x = RandomBFloat16((long)Tokens * c.Dim);
        hidden = RandomBFloat16((long)Tokens * c.HiddenDim);
        wo = RandomBFloat16((long)c.Dim * c.Dim, 0.02f);
        wUp = RandomBFloat16((long)c.HiddenDim * c.Dim, 0.02f);
        y = Own(Device.Allocate<BFloat16>((long)Tokens * c.HiddenDim));
        Record(nameof(Output), Tokens, c.Dim, c.Dim);
        Record(nameof(Up), Tokens, c.Dim, c.HiddenDim);
        Record(nameof(UpInputGrad), Tokens, c.HiddenDim, c.Dim);
        Record(nameof(Down), Tokens, c.HiddenDim, c.Dim);
        Record(nameof(DownResidual), Tokens, c.HiddenDim, c.Dim, addend: true);
    }

    protected override void CleanUp() => blas.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Output()
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.Linear(x.View, wo.View, y.View.Slice(0, (long)Tokens * Config.Dim), Tokens, Config.Dim, Config.Dim, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Up()
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.Linear(x.View, wUp.View, y.View, Tokens, Config.Dim, Config.HiddenDim, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void UpInputGrad()
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.LinearInputGrad(hidden.View, wUp.View, y.View.Slice(0, (long)Tokens * Config.Dim), Tokens, Config.Dim, Config.HiddenDim, Stream);
        }
        Wait();
    }

    // The down weight (dim, hidden) is wUp's buffer read as that shape: the same random values, the same size.
    [Benchmark(OperationsPerInvoke = Launches)]
    public void Down()
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.Linear(hidden.View, wUp.View, y.View.Slice(0, (long)Tokens * Config.Dim), Tokens, Config.HiddenDim, Config.Dim, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void DownResidual()
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.LinearAdd(hidden.View, wUp.View, x.View, y.View.Slice(0, (long)Tokens * Config.Dim), Tokens, Config.HiddenDim, Config.Dim, Stream);
        }
        Wait();
    }

    private void Record(string method, long m, long k, long n, bool addend = false) => Work(method, OpWork.Linear(m, k, n, addend));
}
