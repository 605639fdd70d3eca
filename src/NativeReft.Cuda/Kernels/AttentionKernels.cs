using System.Runtime.InteropServices;
using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/attention.cu: causal GQA attention over bf16 rows with an optional key mask and a KV
/// cache layout (<see cref="AttentionShape"/>), forward and backward, as CpuBackend&lt;T&gt;.Attention and
/// AttentionBackward compute them. Direct kernels, one warp per output row, online softmax (any KeyLength).
/// Every method queues its launches on the stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class AttentionKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "attention.cu";

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

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public AttentionKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("attention_forward");
        backwardQuery = module.GetFunction("attention_backward_dq");
        backwardKeyValue = module.GetFunction("attention_backward_dkv");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

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
        var dims = Check(q, k, v, keyMask, shape, "attention backward");
        RequireLength(dOut.Length, q.Length, "attention backward: dOut");
        RequireLength(dQ.Length, q.Length, "attention backward: dQ");
        RequireLength(dK.Length, k.Length, "attention backward: dK");
        RequireLength(dV.Length, v.Length, "attention backward: dV");
        RequireLength(scratch.Length, BackwardScratchLength(shape), "attention backward: scratch");
        int hs = shape.HeadSize;
        var queryConfig = Config((long)shape.Batch * shape.QueryLength * shape.Heads, FloatsPerWarp(3 * hs + Chunk, "attention backward"));
        var keyConfig = Config((long)shape.Batch * shape.KeyStride * shape.KvHeads, FloatsPerWarp(4 * hs + 4 * Chunk, "attention backward"));
        runtime.Launch(backwardQuery, queryConfig, stream, dQ.Pointer, scratch.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
        runtime.Launch(backwardKeyValue, keyConfig, stream, dK.Pointer, dV.Pointer, scratch.Pointer, q.Pointer, k.Pointer, v.Pointer, keyMask.Pointer, dOut.Pointer, dims);
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

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

    // The kernels' AttentionDims, field for field. The scale is computed as CpuBackend<float> computes it.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct Dims(AttentionShape shape, float scale)
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
