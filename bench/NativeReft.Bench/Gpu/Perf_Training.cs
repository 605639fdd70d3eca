using BenchmarkDotNet.Attributes;
using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Tensors;

namespace NativeReft.Bench.Gpu;

/// <summary>
/// Causal GQA attention over sequences of 512 (64 under the emulator): forward, and backward (dQ, dK, dV with the
/// softmax recomputed). FLOPs: 4 B H hs T(T+1)/2 forward (QK^T and PV over the visible keys), 2.5 times that
/// backward, the usual accounting.
/// </summary>
public class Perf_Attention : KernelBench
{
    /// <summary>
    /// The direct kernels, or Auto: the tensor-core kernels where they apply (head size 64 or 128, sm_80+), so the
    /// two rows of a shape compare them in one run.
    /// </summary>
    [Params(AttentionPath.Direct, AttentionPath.Auto)]
    public AttentionPath Path { get; set; }

    private AttentionKernels kernels = null!;
    private DeviceBuffer<BFloat16> q = null!, k = null!, v = null!, output = null!, dOut = null!, dQ = null!, dK = null!, dV = null!;
    private DeviceBuffer<float> scratch = null!;
    private AttentionShape shape;

    protected override void SetUp()
    {
        var c = Config;
        int length = Math.Min(OnGpu ? 512 : 64, Tokens);
        shape = new AttentionShape(Tokens / length, length, length, length, 0, c.Heads, c.KvHeads, c.HeadSize);
        kernels = new AttentionKernels(Device, Path);
        long qn = (long)Tokens * c.QDim, kvn = (long)Tokens * c.KvDim;
        (q, k, v, dOut) = (RandomBFloat16(qn), RandomBFloat16(kvn), RandomBFloat16(kvn), RandomBFloat16(qn));
        (output, dQ, dK, dV) = (Own(Device.Allocate<BFloat16>(qn)), Own(Device.Allocate<BFloat16>(qn)), Own(Device.Allocate<BFloat16>(kvn)), Own(Device.Allocate<BFloat16>(kvn)));
        scratch = Own(Device.Allocate<float>(AttentionKernels.BackwardScratchLength(shape)));
        Work(nameof(Forward), OpWork.Attention(shape));
        Work(nameof(Backward), OpWork.AttentionBackward(shape));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Forward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(q, k, v, default, shape, output, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Backward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Backward(q, k, v, default, shape, dOut, dQ, dK, dV, scratch, Stream);
        }
        Wait();
    }
}

/// <summary>
/// A rank-8 LoReFT at 14 positions (f7+l7) of each 512-token sequence, straight on the residual stream through a
/// row index list: forward and backward (dH, and dR, dW, db accumulated).
/// </summary>
public class Perf_Intervention : KernelBench
{
    private const int Rank = 8;
    private InterventionKernels kernels = null!;
    private DeviceBuffer<BFloat16> x = null!, output = null!, saved = null!, dOut = null!;
    private DeviceBuffer<int> rows = null!;
    private DeviceBuffer<float> scratch = null!;
    private InterventionParameters parameters, gradients;
    private int count;

    protected override void SetUp()
    {
        int d = Config.Dim, length = OnGpu ? 512 : 64;
        kernels = new InterventionKernels(Device);
        int[] picked = [.. Enumerable.Range(0, Tokens / length).SelectMany(b => Enumerable.Range(0, 7).Concat(Enumerable.Range(length / 2 - 7, 7)).Select(t => b * length + t))];
        count = picked.Length;
        rows = Own(Device.Upload<int>(picked));
        (x, dOut) = (RandomBFloat16((long)Tokens * d), RandomBFloat16((long)Tokens * d));
        output = Own(Device.Allocate<BFloat16>((long)Tokens * d));
        saved = Own(Device.Allocate<BFloat16>((long)count * d));
        parameters = new InterventionParameters(RandomFloat((long)Rank * d, 0.05f), RandomFloat((long)Rank * d, 0.05f), RandomFloat(Rank), Rank, true, Activation.Linear);
        gradients = new InterventionParameters(RandomFloat((long)Rank * d), RandomFloat((long)Rank * d), RandomFloat(Rank), Rank, true, Activation.Linear);
        scratch = Own(Device.Allocate<float>(InterventionKernels.BackwardScratchLength(count, Rank)));
        long parameterCount = 2L * Rank * d + Rank;
        Work(nameof(Forward), OpWork.Intervention(count, d, parameterCount, backward: false, savesInput: true));
        Work(nameof(Backward), OpWork.Intervention(count, d, parameterCount, backward: true));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Forward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Forward(x, rows, count, Config.Dim, parameters, default, output, saved, default, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Backward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.Backward(saved, rows, count, Config.Dim, parameters, dOut, default, output, gradients, scratch, default, Stream);
        }
        Wait();
    }
}

/// <summary>Cross-entropy fused with its gradient over the labelled rows (half the tokens) and the whole vocabulary.</summary>
public class Perf_CrossEntropy : KernelBench
{
    private CrossEntropyKernels kernels = null!;
    private DeviceBuffer<BFloat16> logits = null!, dLogits = null!;
    private DeviceBuffer<int> targets = null!;
    private DeviceBuffer<float> losses = null!;
    private int rows;

    protected override void SetUp()
    {
        int vocab = Config.VocabSize;
        rows = Tokens / 2;
        kernels = new CrossEntropyKernels(Device);
        logits = RandomBFloat16((long)rows * vocab, 4f);
        dLogits = Own(Device.Allocate<BFloat16>((long)rows * vocab));
        var rng = new Random(2);
        targets = Own(Device.Upload<int>(Enumerable.Range(0, rows).Select(_ => rng.Next(vocab)).ToArray()));
        losses = Own(Device.Allocate<float>(rows));
        Work(nameof(ForwardBackward), OpWork.CrossEntropy(rows, vocab));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void ForwardBackward()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.ForwardBackward(logits, targets, rows, Config.VocabSize, 1f / rows, dLogits, losses, default, Stream);
        }
        Wait();
    }
}

/// <summary>
/// One AdamW step over every parameter of a rank-8 LoReFT at every layer (R, W, b per layer), one launch; and the
/// retraction of every R (one launch). AdamW moves 7 floats per element (p, g, m, v read; p, m, v written).
/// </summary>
public class Perf_Optimizer : KernelBench
{
    private const int Rank = 8;
    private OptimizerKernels kernels = null!;
    private DeviceBuffer<AdamWSegment> adamw = null!;
    private DeviceBuffer<MatrixSegment> matrices = null!;
    private DeviceBuffer<StepValues> step = null!;
    private int segments, layers;

    protected override void SetUp()
    {
        var c = Config;
        layers = c.Layers;
        kernels = new OptimizerKernels(Device);
        var table = new List<AdamWSegment>();
        var rs = new List<MatrixSegment>();
        long elements = 0;
        for (int l = 0; l < layers; l++)
        {
            foreach (long n in new long[] { (long)Rank * c.Dim, (long)Rank * c.Dim, Rank })
            {
                var (p, g, m, v) = (RandomFloat(n, 0.05f), RandomFloat(n, 0.01f), RandomFloat(n, 0.01f), RandomFloat(n, 0.01f));
                Device.Fill32(v.Pointer, 0x3c23d70a, n, Stream); // v = 0.01 > 0, as after a few steps
                table.Add(new AdamWSegment(p, g, m, v, 0));
                if (n == (long)Rank * c.Dim && rs.Count < layers)
                {
                    rs.Add(new MatrixSegment(p, Rank, c.Dim));
                }
                elements += n;
            }
        }
        segments = table.Count;
        adamw = Own(Device.Upload<AdamWSegment>(table.ToArray()));
        matrices = Own(Device.Upload<MatrixSegment>(rs.ToArray()));
        step = Own(Device.Upload<StepValues>([StepValues.Start(1e-4, 0.9, 0.999, 10)]));
        Work(nameof(AdamW), OpWork.AdamW(elements));
        Work(nameof(Retraction), layers * OpWork.Retraction(Rank, c.Dim));
    }

    protected override void CleanUp() => kernels.Dispose();

    [Benchmark(OperationsPerInvoke = Launches)]
    public void AdamW()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.AdamW(adamw, segments, step, 0.9, 0.999, 1e-8, Stream);
        }
        Wait();
    }

    [Benchmark(OperationsPerInvoke = Launches)]
    public void Retraction()
    {
        for (int i = 0; i < Launches; i++)
        {
            kernels.OrthonormalizeRows(matrices, layers, default, default, Stream);
        }
        Wait();
    }
}
