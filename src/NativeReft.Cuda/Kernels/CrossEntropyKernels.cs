using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/crossentropy.cu: cross-entropy of bf16 logits (rows, vocab) against int32 targets,
/// fused with its backward, one block per row. Queues one launch on the stream given and returns (no
/// synchronization); shapes are checked first.
/// </summary>
public sealed class CrossEntropyKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "crossentropy.cu";

    // One block per row; enough threads for one 8-element pack each up to this many (a 128k row is then 31 packs
    // per thread), fewer for small vocabularies so that threads are not idle.
    private const int MaxRowBlock = 512;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forwardBackward;
    private readonly KernelFunction sum;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public CrossEntropyKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forwardBackward = module.GetFunction("crossentropy_forward_backward");
        sum = module.GetFunction("crossentropy_sum");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>
    /// For each row i of <paramref name="logits"/> (rows, vocab): losses[i] = logsumexp(logits[i]) - logits[i, t]
    /// (fp32) and dLogits[i] = bf16(gradScale * (softmax(logits[i]) - onehot(t))), t = targets[i]. A negative
    /// target ignores its row (loss 0, a zero gradient row); a target &gt;= vocab does the same and sets error[0] = 1
    /// (error may be empty: no report). <paramref name="dLogits"/> may be <paramref name="logits"/> itself (in
    /// place); targets (rows), losses (rows).
    /// </summary>
    public void ForwardBackward(DeviceView<BFloat16> logits, DeviceView<int> targets, int rows, int vocab, float gradScale,
        DeviceView<BFloat16> dLogits, DeviceView<float> losses, DeviceView<int> error, DeviceStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(vocab);
        long elements = (long)rows * vocab;
        if (logits.Length != elements)
        {
            throw new ArgumentException($"cross-entropy: logits have {logits.Length} elements, expected {rows} rows x {vocab}");
        }
        if (dLogits.Length != elements)
        {
            throw new ArgumentException($"cross-entropy: dLogits have {dLogits.Length} elements, expected {rows} rows x {vocab}");
        }
        if (targets.Length != rows)
        {
            throw new ArgumentException($"cross-entropy: {targets.Length} targets for {rows} rows");
        }
        if (losses.Length != rows)
        {
            throw new ArgumentException($"cross-entropy: {losses.Length} losses for {rows} rows");
        }
        if (dLogits.Pointer != logits.Pointer && Overlap(logits, dLogits))
        {
            throw new ArgumentException("cross-entropy: dLogits overlap logits without being the same view (in place is dLogits == logits)");
        }
        if (!error.IsEmpty && error.Length != 1)
        {
            throw new ArgumentException($"cross-entropy: the error flag is one int, not {error.Length}");
        }
        if (rows == 0)
        {
            return;
        }
        runtime.Launch(forwardBackward, new LaunchConfig((uint)rows, RowBlock(vocab)), stream, dLogits.Pointer, losses.Pointer,
            error.Pointer, logits.Pointer, targets.Pointer, gradScale, rows, vocab);
    }

    /// <summary>
    /// total[0] += the sum of <paramref name="losses"/> in double, in row order (the bits a host sum gives): a
    /// training step's loss accumulates where it is computed. <paramref name="total"/> is one double.
    /// </summary>
    public void Sum(DeviceView<float> losses, DeviceView<double> total, DeviceStream stream)
    {
        if (total.Length != 1)
        {
            throw new ArgumentException($"cross-entropy sum: the total is one double, not {total.Length}");
        }
        if (!losses.IsEmpty)
        {
            runtime.Launch(sum, new LaunchConfig(1, 32), stream, total.Pointer, losses.Pointer, checked((int)losses.Length));
        }
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    // One thread per 8-element pack (the vector path's unit), in whole warps, 32..512.
    private static uint RowBlock(int vocab)
    {
        int packs = (vocab + 7) / 8;
        return (uint)Math.Clamp((packs + 31) / 32 * 32, 32, MaxRowBlock);
    }

    private static bool Overlap(DeviceView<BFloat16> a, DeviceView<BFloat16> b) =>
        a.Pointer.Address < b.Pointer.Address + (ulong)b.SizeInBytes && b.Pointer.Address < a.Pointer.Address + (ulong)a.SizeInBytes;
}
