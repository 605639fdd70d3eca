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
/// <remarks>
/// Whether concatenated weights would pay, read off one run: the step makes Q, K and V with three GEMMs (Q is
/// <see cref="Output"/>'s shape where the query width is dim, K and V are <see cref="KeyValue"/>) and gate and up
/// with two (<see cref="Up"/>), and their input gradients with three accumulating GEMMs (<see cref="QueryInputGrad"/>,
/// <see cref="KeyValueInputGrad"/> twice) and two (<see cref="UpInputGrad"/>). <see cref="Qkv"/>, <see cref="GateUp"/>,
/// <see cref="QkvInputGrad"/> and <see cref="GateUpInputGrad"/> time the single GEMM each would become.
/// </remarks>
public class Perf_Linear : KernelBench
{
    private Blas blas = null!;
    private DeviceBuffer<BFloat16> x = null!;
    private DeviceBuffer<BFloat16> hidden = null!;
    private DeviceBuffer<BFloat16> wo = null!;
    private DeviceBuffer<BFloat16> wUp = null!;
    private DeviceBuffer<BFloat16> y = null!;
    private DeviceBuffer<BFloat16> wide = null!;
    private DeviceBuffer<BFloat16> wWide = null!;
    private DeviceBuffer<BFloat16> dx = null!;

    private int QkvWidth => Config.QDim + 2 * Config.KvDim;

    protected override void SetUp()
    {
        var c = Config;
        blas = new Blas(Device);
        long widest = Math.Max(QkvWidth, 2L * c.HiddenDim);
        x = RandomBFloat16((long)Tokens * c.Dim);
        hidden = RandomBFloat16((long)Tokens * c.HiddenDim);
        wide = RandomBFloat16(Tokens * widest); // the concatenated GEMMs' output gradients
        wo = RandomBFloat16((long)c.Dim * c.Dim, 0.02f);
        wUp = RandomBFloat16((long)c.HiddenDim * c.Dim, 0.02f);
        wWide = RandomBFloat16(widest * c.Dim, 0.02f);
        y = Own(Device.Allocate<BFloat16>(Tokens * widest));
        dx = RandomBFloat16((long)Tokens * c.Dim); // accumulated into: random, as a gradient already there
        Record(nameof(Output), Tokens, c.Dim, c.Dim);
        Record(nameof(Up), Tokens, c.Dim, c.HiddenDim);
        Record(nameof(UpInputGrad), Tokens, c.HiddenDim, c.Dim);
        Record(nameof(Down), Tokens, c.HiddenDim, c.Dim);
        Record(nameof(DownResidual), Tokens, c.HiddenDim, c.Dim, addend: true);
        Record(nameof(KeyValue), Tokens, c.Dim, c.KvDim);
        Record(nameof(Qkv), Tokens, c.Dim, QkvWidth);
        Record(nameof(GateUp), Tokens, c.Dim, 2 * c.HiddenDim);
        Work(nameof(QueryInputGrad), OpWork.LinearInputGrad(Tokens, c.Dim, c.QDim, accumulate: false));
        Work(nameof(KeyValueInputGrad), OpWork.LinearInputGrad(Tokens, c.Dim, c.KvDim, accumulate: true));
        Work(nameof(QkvInputGrad), OpWork.LinearInputGrad(Tokens, c.Dim, QkvWidth, accumulate: false));
        Work(nameof(GateUpInputGrad), OpWork.LinearInputGrad(Tokens, c.Dim, 2 * c.HiddenDim, accumulate: false));
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

    [Benchmark(OperationsPerInvoke = Launches)]
    public void KeyValue() => LinearWide(Config.KvDim);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Qkv() => LinearWide(QkvWidth);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void GateUp() => LinearWide(2 * Config.HiddenDim);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void QueryInputGrad() => InputGradWide(Config.QDim, beta: 0);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void KeyValueInputGrad() => InputGradWide(Config.KvDim, beta: 1);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void QkvInputGrad() => InputGradWide(QkvWidth, beta: 0);

    [Benchmark(OperationsPerInvoke = Launches)]
    public void GateUpInputGrad() => InputGradWide(2 * Config.HiddenDim, beta: 0);

    // y (tokens, n) = x wWide[..n]^T: a projection from dim to n outputs.
    private void LinearWide(int n)
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.Linear(x.View, wWide.View.Slice(0, (long)n * Config.Dim), y.View.Slice(0, (long)Tokens * n), Tokens, Config.Dim, n, Stream);
        }
        Wait();
    }

    // dx (tokens, dim) = wide[.., ..n] wWide[..n] + beta dx: the input gradient of a projection to n outputs.
    private void InputGradWide(int n, float beta)
    {
        for (int i = 0; i < Launches; i++)
        {
            blas.LinearInputGrad(wide.View.Slice(0, (long)Tokens * n), wWide.View.Slice(0, (long)n * Config.Dim), dx.View,
                Tokens, Config.Dim, n, Stream, beta: beta);
        }
        Wait();
    }

    private void Record(string method, long m, long k, long n, bool addend = false) => Work(method, OpWork.Linear(m, k, n, addend));
}
