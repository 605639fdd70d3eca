using System.Runtime.InteropServices;
using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>Which attention kernels a launcher runs.</summary>
public enum AttentionPath
{
    /// <summary>
    /// Tensor cores where they apply (<see cref="AttentionKernels.TensorCoreProblem(AttentionShape)"/> says when they do not),
    /// the direct kernels otherwise.
    /// </summary>
    Auto,

    /// <summary>kernels/attention.cu only: any head size, any device, one warp per row.</summary>
    Direct,

    /// <summary>kernels/flash_attention.cu only; a call it cannot take throws, naming why.</summary>
    TensorCore,
}

/// <summary>
/// The launcher for kernels/attention.cu and kernels/flash_attention.cu: causal GQA attention over bf16 rows with an
/// optional key mask and a KV cache layout (<see cref="AttentionShape"/>), forward and backward, as
/// CpuBackend&lt;T&gt;.Attention and AttentionBackward compute them. Two implementations of the same contract: direct
/// kernels (one warp per output row, online softmax, any head size and KeyLength) and FlashAttention-style tiles on
/// tensor cores (sm_80+, head sizes 64 and 128, at least 16 queries); <see cref="AttentionPath"/> picks.
/// Every method queues its launches on the stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class AttentionKernels : IDisposable
{
    /// <summary>The direct kernels' file.</summary>
    public const string FileName = "attention.cu";

    /// <summary>The tensor-core kernels' file.</summary>
    public const string TensorCoreFileName = "flash_attention.cu";

    /// <summary>
    /// The dynamic shared memory a block may use without opting in (48 KiB on every CUDA device). A warp's slice
    /// is a few rows of HeadSize floats (4 * HeadSize + 128 floats in the dk/dv kernel, the largest), so this
    /// bounds the head size, never the sequence: HeadSize &lt;= 3040.
    /// </summary>
    public const int SharedMemoryLimitBytes = 48 * 1024;

    private const int Chunk = 32;
    private const int WarpsPerBlock = 4;
    private const uint MaxBlocks = 65535u * 32;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction backwardQuery;
    private readonly KernelFunction backwardKeyValue;
    private FlashAttention? flash;

    /// <summary>
    /// Loads (compiling or taking from the cache) the direct kernels on <paramref name="runtime"/>; the tensor-core
    /// ones load on the first call that runs them.
    /// </summary>
    public AttentionKernels(IDeviceRuntime runtime, AttentionPath path = AttentionPath.Auto)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        Path = path;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("attention_forward");
        backwardQuery = module.GetFunction("attention_backward_dq");
        backwardKeyValue = module.GetFunction("attention_backward_dkv");
    }

    /// <summary>The loaded module of the direct kernels (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>How this launcher chooses between the two implementations (for the calls queued from now on).</summary>
    public AttentionPath Path { get; set; }

    /// <summary>Whether <paramref name="runtime"/> has the tensor-core instruction the flash kernels use (sm_80+).</summary>
    public static bool TensorCoresAvailable(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        return HasTensorCores(runtime.Properties);
    }

    // mma.sync bf16, ldmatrix and cp.async: sm_80 and later.
    private static bool HasTensorCores(DeviceProperties device) => device.ComputeMajor >= 8;

    /// <summary>
    /// Why the tensor-core kernels cannot take a call of <paramref name="shape"/> on this launcher's device, or null
    /// when they can: they need sm_80+, head size 64 or 128, the shared memory their blocks use (102 KiB at head size
    /// 128: more than sm_86/sm_89 cards allow), at least 16 queries (a decode step runs the direct kernel, which reads
    /// each key once per query row anyway), and at most 65535 (sequence, head) pairs.
    /// </summary>
    public string? TensorCoreProblem(AttentionShape shape) => TensorCoreProblem(shape, runtime.Properties);

    /// <summary><see cref="TensorCoreProblem(AttentionShape)"/> on a device with <paramref name="device"/>'s properties.</summary>
    public static string? TensorCoreProblem(AttentionShape shape, DeviceProperties device)
    {
        ArgumentNullException.ThrowIfNull(device);
        shape.Validate();
        if (!HasTensorCores(device))
        {
            return $"{device.Name} is {device.Architecture}; the tensor-core attention needs sm_80 or later";
        }
        if (shape.HeadSize is not (64 or 128))
        {
            return $"head size {shape.HeadSize}: the tensor-core attention is built for head sizes 64 and 128";
        }
        int shared = FlashAttention.SharedBytes(shape.HeadSize);
        if (shared > device.MaxSharedMemoryPerBlockOptIn)
        {
            return $"its blocks need {shared} B of shared memory at head size {shape.HeadSize}; {device.Name} allows {device.MaxSharedMemoryPerBlockOptIn} B per block";
        }
        if (shape.QueryLength < FlashAttention.MinimumQueries)
        {
            return $"{shape.QueryLength} queries: the tensor-core attention takes {FlashAttention.MinimumQueries} or more";
        }
        if ((long)shape.Batch * shape.Heads > ushort.MaxValue)
        {
            return $"{shape.Batch} sequences x {shape.Heads} heads: over the {ushort.MaxValue} blocks of a grid's y dimension";
        }
        return null;
    }

    /// <summary>
    /// Whether a call of <paramref name="shape"/> runs the tensor-core kernels (given 16-byte aligned tensors, as
    /// every allocation is).
    /// </summary>
    public bool ChoosesTensorCores(AttentionShape shape) => Path != AttentionPath.Direct && TensorCoreProblem(shape) is null;

    // The implementation of one call: tensor cores when the path allows and they apply (and every pointer is
    // 16-byte aligned, as their 128-bit tile loads need), else the direct kernels.
    private bool UseTensorCores(AttentionShape shape, params DevicePointer[] pointers)
    {
        if (Path == AttentionPath.Direct)
        {
            return false;
        }
        string? problem = TensorCoreProblem(shape)
            ?? (pointers.Any(p => p.Address % 16 != 0) ? "a tensor is not 16-byte aligned (a view that starts inside a row?)" : null);
        if (problem is not null)
        {
            return Path == AttentionPath.TensorCore
                ? throw new ArgumentException($"attention: the tensor-core path cannot take this call: {problem}")
                : false;
        }
        flash ??= new FlashAttention(runtime);
        return true;
    }

    /// <summary>
    /// The f32 scratch <see cref="Backward"/> needs: the softmax's log-sum-exp and D = sum_j p_j dP_j per query
    /// row and head, 2 * Batch * QueryLength * Heads elements.
    /// </summary>
    public static long BackwardScratchLength(AttentionShape shape)
    {
        shape.Validate();
        return 2L * shape.Batch * shape.QueryLength * shape.Heads;
    }

    /// <summary>
    /// output = softmax(scale * q k^T + causal and key mask) v per head, scale = 1/sqrt(HeadSize). q, output
    /// (Batch * QueryLength, Heads * HeadSize); k, v (Batch * KeyStride, KvHeads * HeadSize); keyMask
    /// (Batch * KeyStride) bytes, nonzero = visible, or empty (every key visible). A query that sees no key
    /// outputs zeros.
    /// </summary>
    public void Forward(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> output, DeviceStream stream) =>
        Forward(q, k, v, keyMask, shape, output, default, stream);

    /// <summary>
    /// As <see cref="Forward(DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{byte}, AttentionShape, DeviceView{BFloat16}, DeviceStream)"/>,
    /// also writing each row's log-sum-exp of the scaled scores to <paramref name="logSumExp"/>
    /// (Batch * QueryLength, Heads) f32, -infinity for a query that sees no key; empty writes nothing.
    /// </summary>
    public void Forward(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> output, DeviceView<float> logSumExp, DeviceStream stream)
    {
        var dims = Check(q, k, v, keyMask, shape, "attention");
        RequireLength(output.Length, q.Length, "attention: output");
        if (!logSumExp.IsEmpty)
        {
            RequireLength(logSumExp.Length, (long)shape.Batch * shape.QueryLength * shape.Heads, "attention: logSumExp");
        }
        if (UseTensorCores(shape, q.Pointer, k.Pointer, v.Pointer, output.Pointer))
        {
            flash!.Forward(shape, stream, output.Pointer, logSumExp.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dims);
            return;
        }
        var config = Config((long)shape.Batch * shape.QueryLength * shape.Heads, FloatsPerWarp(2 * shape.HeadSize + Chunk, "attention"));
        runtime.Launch(forward, config, stream, output.Pointer, logSumExp.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dims);
    }

    /// <summary>
    /// The gradients of <see cref="Forward(DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{byte}, AttentionShape, DeviceView{BFloat16}, DeviceStream)"/>
    /// for the upstream gradient <paramref name="dOut"/>, recomputing the softmax from q and k: dQ (like q), dK,
    /// dV (like k, v) are written (activation gradients); rows of unused cache slots and masked keys get zeros.
    /// Two launches: dQ per query row (which also saves the softmax statistics in <paramref name="scratch"/>),
    /// then dK, dV per key row, summing over the group's query heads in a fixed order (deterministic).
    /// scratch: <see cref="BackwardScratchLength"/> f32 elements (contents undefined before, meaningless after).
    /// </summary>
    public void Backward(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> dOut, DeviceView<BFloat16> dQ, DeviceView<BFloat16> dK, DeviceView<BFloat16> dV,
        DeviceView<float> scratch, DeviceStream stream)
    {
        var dims = CheckBackward(q, k, v, keyMask, shape, dOut, dQ, dK, dV, scratch);
        if (UseTensorCores(shape, q.Pointer, k.Pointer, v.Pointer, dOut.Pointer, dQ.Pointer, dK.Pointer, dV.Pointer))
        {
            flash!.Backward(shape, stream, dQ.Pointer, dK.Pointer, dV.Pointer, scratch.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
            return;
        }
        DirectBackward(q, k, v, keyMask, shape, dOut, dQ, dK, dV, scratch, stream, dims);
    }

    /// <summary>
    /// <see cref="Backward"/> after a forward that kept its log-sum-exp in <paramref name="statistics"/>'s first
    /// half (Forward's logSumExp argument, a view of the same buffer) and its <paramref name="output"/>: the
    /// tensor-core kernels then take D = dO . out and skip the pass over the keys that recomputes both; the direct
    /// kernels recompute as ever. statistics: <see cref="BackwardScratchLength"/> f32 elements (the D half is
    /// written here).
    /// </summary>
    public void BackwardFromSaved(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> output, DeviceView<BFloat16> dOut, DeviceView<BFloat16> dQ, DeviceView<BFloat16> dK,
        DeviceView<BFloat16> dV, DeviceView<float> statistics, DeviceStream stream)
    {
        var dims = CheckBackward(q, k, v, keyMask, shape, dOut, dQ, dK, dV, statistics);
        RequireLength(output.Length, q.Length, "attention backward: output");
        if (UseTensorCores(shape, q.Pointer, k.Pointer, v.Pointer, output.Pointer, dOut.Pointer, dQ.Pointer, dK.Pointer, dV.Pointer))
        {
            flash!.BackwardSaved(shape, stream, output.Pointer, dQ.Pointer, dK.Pointer, dV.Pointer, statistics.Pointer, q.Pointer, k.Pointer,
                v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
            return;
        }
        DirectBackward(q, k, v, keyMask, shape, dOut, dQ, dK, dV, statistics, stream, dims);
    }

    /// <summary>Unloads the modules.</summary>
    public void Dispose()
    {
        flash?.Dispose();
        module.Dispose();
    }

    private static Dims CheckBackward(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> dOut, DeviceView<BFloat16> dQ, DeviceView<BFloat16> dK, DeviceView<BFloat16> dV,
        DeviceView<float> scratch)
    {
        var dims = Check(q, k, v, keyMask, shape, "attention backward");
        RequireLength(dOut.Length, q.Length, "attention backward: dOut");
        RequireLength(dQ.Length, q.Length, "attention backward: dQ");
        RequireLength(dK.Length, k.Length, "attention backward: dK");
        RequireLength(dV.Length, v.Length, "attention backward: dV");
        RequireLength(scratch.Length, BackwardScratchLength(shape), "attention backward: scratch");
        return dims;
    }

    // attention.cu's backward: dQ per query row (saving the statistics in scratch), then dK, dV per key row.
    private void DirectBackward(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, DeviceView<BFloat16> dOut, DeviceView<BFloat16> dQ, DeviceView<BFloat16> dK, DeviceView<BFloat16> dV,
        DeviceView<float> scratch, DeviceStream stream, Dims dims)
    {
        int hs = shape.HeadSize;
        var queryConfig = Config((long)shape.Batch * shape.QueryLength * shape.Heads, FloatsPerWarp(3 * hs + Chunk, "attention backward"));
        var keyConfig = Config((long)shape.Batch * shape.KeyStride * shape.KvHeads, FloatsPerWarp(4 * hs + 4 * Chunk, "attention backward"));
        runtime.Launch(backwardQuery, queryConfig, stream, dQ.Pointer, scratch.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
        runtime.Launch(backwardKeyValue, keyConfig, stream, dK.Pointer, dV.Pointer, scratch.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
    }

    // One warp per row, four warps (independent) per block, a warp-stride loop past the grid's cap.
    private static LaunchConfig Config(long rows, int floatsPerWarp)
    {
        int warps = Math.Clamp(SharedMemoryLimitBytes / sizeof(float) / floatsPerWarp, 1, WarpsPerBlock);
        long blocks = Math.Clamp((rows + warps - 1) / warps, 1, MaxBlocks);
        return new LaunchConfig((uint)blocks, (uint)(32 * warps), warps * floatsPerWarp * sizeof(float));
    }

    private static int FloatsPerWarp(int floats, string what)
    {
        if ((long)floats * sizeof(float) > SharedMemoryLimitBytes)
        {
            throw new ArgumentException($"{what}: a warp needs {floats * sizeof(float)} bytes of shared memory for this head size, over the {SharedMemoryLimitBytes} bytes a block may use without opting in");
        }
        return floats;
    }

    private static Dims Check(DeviceView<BFloat16> q, DeviceView<BFloat16> k, DeviceView<BFloat16> v, DeviceView<byte> keyMask,
        AttentionShape shape, string what)
    {
        shape.Validate();
        long queryRows = (long)shape.Batch * shape.QueryLength, keyRows = (long)shape.Batch * shape.KeyStride;
        if (queryRows * shape.Heads > int.MaxValue || keyRows * shape.KvHeads > int.MaxValue)
        {
            throw new ArgumentException($"{what}: {shape} has more than {int.MaxValue} rows of heads");
        }
        RequireLength(q.Length, queryRows * shape.Heads * shape.HeadSize, what + ": q");
        RequireLength(k.Length, keyRows * shape.KvHeads * shape.HeadSize, what + ": k");
        RequireLength(v.Length, keyRows * shape.KvHeads * shape.HeadSize, what + ": v");
        if (!keyMask.IsEmpty)
        {
            RequireLength(keyMask.Length, keyRows, what + ": key mask");
        }
        return new Dims(shape, 1f / MathF.Sqrt(shape.HeadSize));
    }

    private static void RequireLength(long actual, long expected, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{what} has {actual} elements, expected {expected}");
        }
    }

    // The kernels' AttentionDims (kernels/attention.cuh), field for field. The scale is computed as CpuBackend<float> computes it.
    [StructLayout(LayoutKind.Sequential)]
    internal readonly struct Dims(AttentionShape shape, float scale)
    {
        public readonly int Batch = shape.Batch;
        public readonly int QueryLength = shape.QueryLength;
        public readonly int KeyLength = shape.KeyLength;
        public readonly int KeyStride = shape.KeyStride;
        public readonly int QueryOffset = shape.QueryOffset;
        public readonly int Heads = shape.Heads;
        public readonly int KvHeads = shape.KvHeads;
        public readonly int HeadSize = shape.HeadSize;
        public readonly float Scale = scale;
    }
}
