using BenchmarkDotNet.Attributes;
using NativeReft.Cuda;
using NativeReft.Tensors;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// RMSNorm over (tokens, dim) rows: forward, forward fused with the residual add, and backward; and the residual
/// add alone (the sublayer close that no norm follows).
/// </summary>
public class Perf_RmsNorm : KernelBench
{
    private RmsNormKernels kernels = null!;
    private ElementwiseKernels elementwise = null!;
    private DeviceBuffer<BFloat16> x = null!, branch = null!, weight = null!, output = null!, dOut = null!;
    private DeviceBuffer<float> rstd = null!;

    protected override void SetUp()
    {
        var c = Config;
        long n = (long)Tokens * c.Dim;
        kernels = new RmsNormKernels(Device);
        elementwise = new ElementwiseKernels(Device);
        (x, branch, weight, dOut) = (RandomBFloat16(n), RandomBFloat16(n, 0.1f), RandomBFloat16(c.Dim), RandomBFloat16(n));
        output = Own(Device.Allocate<BFloat16>(n));
        rstd = Own(Device.Allocate<float>(Tokens));
        Work(nameof(Forward), OpWork.RmsNorm(Tokens, c.Dim, savesRstd: true));
        Work(nameof(ResidualForward), OpWork.AddRmsNorm(Tokens, c.Dim, savesRstd: true));
        Work(nameof(Backward), OpWork.RmsNormBackward(Tokens, c.Dim, readsRstd: true));
        Work(nameof(ResidualAdd), OpWork.Elementwise(n, 2, reads: 2));
    }

    protected override void CleanUp()
    {
        kernels.Dispose();
        elementwise.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Forward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(x, weight, 1e-5f, Tokens, Config.Dim, output, rstd, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void ResidualForward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.ResidualForward(x, branch, weight, 1e-5f, Tokens, Config.Dim, output, rstd, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Backward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Backward(x, weight, rstd, 1e-5f, dOut, Tokens, Config.Dim, output, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void ResidualAdd()
    {
        for (int i = 0; i < Launches; i++)
        {
            elementwise.Add(x, branch, output, Stream);
        }
        Wait();
    }
}

/// <summary>SwiGLU over (tokens, hidden): forward and backward.</summary>
public class Perf_SwiGlu : KernelBench
{
    private SwiGluKernels kernels = null!;
    private DeviceBuffer<BFloat16> gate = null!, up = null!, output = null!, dOut = null!, dGate = null!, dUp = null!;

    protected override void SetUp()
    {
        long n = (long)Tokens * Config.HiddenDim;
        kernels = new SwiGluKernels(Device);
        (gate, up, dOut) = (RandomBFloat16(n, 3f), RandomBFloat16(n), RandomBFloat16(n));
        (output, dGate, dUp) = (Own(Device.Allocate<BFloat16>(n)), Own(Device.Allocate<BFloat16>(n)), Own(Device.Allocate<BFloat16>(n)));
        Work(nameof(Forward), OpWork.SwiGlu(n));
        Work(nameof(Backward), OpWork.SwiGluBackward(n));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Forward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(gate, up, output, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Backward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Backward(gate, up, dOut, dGate, dUp, Stream);
        }
        Wait();
    }
}

/// <summary>RoPE on the (tokens, heads x head size) queries, in place.</summary>
public class Perf_Rope : KernelBench
{
    private RopeKernels kernels = null!;
    private DeviceBuffer<BFloat16> q = null!;
    private DeviceBuffer<float> cos = null!, sin = null!;
    private DeviceBuffer<int> positions = null!;

    protected override void SetUp()
    {
        var c = Config;
        kernels = new RopeKernels(Device);
        q = RandomBFloat16((long)Tokens * c.QDim);
        int half = c.HeadSize / 2;
        (cos, sin) = (RandomFloat((long)c.MaxSeqLen * half), RandomFloat((long)c.MaxSeqLen * half));
        positions = Own(Device.Upload<int>(Enumerable.Range(0, Tokens).Select(t => t % Math.Min(512, c.MaxSeqLen)).ToArray()));
        Work(nameof(Forward), OpWork.Rope(Tokens, c.QDim)); // table reads hit the cache: rows share positions
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Forward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(q, cos, sin, positions, Config.Heads, Config.HeadSize, default, Stream);
        }
        Wait();
    }
}
