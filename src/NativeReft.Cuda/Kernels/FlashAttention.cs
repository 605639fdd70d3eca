using NativeReft.Backends;

namespace NativeReft.Cuda;

/// <summary>
/// The launches of kernels/flash_attention.cu (tensor-core attention tiles, head sizes 64 and 128). Internal to
/// <see cref="AttentionKernels"/>, which checks shapes and alignment and decides when these kernels run.
/// </summary>
internal sealed class FlashAttention : IDisposable
{
    /// <summary>The fewest queries a call must have (one warp's mma rows).</summary>
    public const int MinimumQueries = 16;

    // Tile sizes, as kernels/flash_attention.cu defines them.
    private const uint Threads = 256;
    private const int BlockRows = 128;
    private const int ForwardRows = 4 * 64;
    private const int QueryRows = BlockRows;
    private const int KeyValueRows = 2 * BlockRows + 4 * 32;
    private const int Pad = 8;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly Dictionary<(string Kernel, int HeadSize), KernelFunction> functions = [];

    public FlashAttention(IDeviceRuntime runtime)
    {
        this.runtime = runtime;
        module = runtime.LoadModule(AttentionKernels.TensorCoreFileName);
        foreach (int headSize in (int[])[64, 128])
        {
            foreach (string kernel in (string[])["forward", "backward_dq", "backward_dq_saved", "backward_dkv"])
            {
                functions[(kernel, headSize)] = module.GetFunction($"flash_attention_{kernel}_hs{headSize}");
            }
        }
    }

    public void Forward(AttentionShape shape, DeviceStream stream, DevicePointer output, DevicePointer logSumExp,
        DevicePointer q, DevicePointer k, DevicePointer v, DevicePointer keyMask, AttentionKernels.Dims dims) =>
        runtime.Launch(functions[("forward", shape.HeadSize)], QueryBlocks(shape, ForwardRows), stream, output, logSumExp, q, k, v, keyMask, dims);

    /// <summary>dQ (and the softmax statistics in scratch), then dK and dV from them.</summary>
    public void Backward(AttentionShape shape, DeviceStream stream, DevicePointer dQ, DevicePointer dK, DevicePointer dV,
        DevicePointer scratch, DevicePointer q, DevicePointer k, DevicePointer v, DevicePointer keyMask, DevicePointer dOut,
        AttentionKernels.Dims dims)
    {
        runtime.Launch(functions[("backward_dq", shape.HeadSize)], QueryBlocks(shape, QueryRows), stream, dQ, scratch, q, k, v, keyMask, dOut, dims);
        runtime.Launch(functions[("backward_dkv", shape.HeadSize)], KeyBlocks(shape), stream, dK, dV, scratch, q, k, v, keyMask, dOut, dims);
    }

    /// <summary>
    /// As <see cref="Backward"/>, with the forward's log-sum-exp already in scratch's first half and its output:
    /// dQ skips the pass over the keys that recomputes the statistics.
    /// </summary>
    public void BackwardSaved(AttentionShape shape, DeviceStream stream, DevicePointer output, DevicePointer dQ, DevicePointer dK,
        DevicePointer dV, DevicePointer scratch, DevicePointer q, DevicePointer k, DevicePointer v, DevicePointer keyMask,
        DevicePointer dOut, AttentionKernels.Dims dims)
    {
        runtime.Launch(functions[("backward_dq_saved", shape.HeadSize)], QueryBlocks(shape, QueryRows), stream, dQ, scratch, q, k, v, keyMask, dOut, output, dims);
        runtime.Launch(functions[("backward_dkv", shape.HeadSize)], KeyBlocks(shape), stream, dK, dV, scratch, q, k, v, keyMask, dOut, dims);
    }

    public void Dispose() => module.Dispose();

    /// <summary>The most dynamic shared memory a block of these kernels asks for at <paramref name="headSize"/>.</summary>
    public static int SharedBytes(int headSize) => TileBytes(Math.Max(Math.Max(ForwardRows, QueryRows), KeyValueRows), headSize);

    // Forward and dq: a block per 128 query rows of a (sequence, head). Shared rows (kernels/flash_attention.cu's
    // header): forward two buffers of a 64-row key and value tile, dq 128 (its q and dO staging).
    private static LaunchConfig QueryBlocks(AttentionShape shape, int sharedRows) =>
        new(new Dim3(Blocks(shape.QueryLength), (uint)(shape.Batch * shape.Heads)), Threads, TileBytes(sharedRows, shape.HeadSize));

    // dK/dV: a block per 128 key rows of a (sequence, KV head), over the whole cache (unused rows get zeros); the
    // block's keys and values, and two buffers of a 32-row q and dO tile.
    private static LaunchConfig KeyBlocks(AttentionShape shape) =>
        new(new Dim3(Blocks(shape.KeyStride), (uint)(shape.Batch * shape.KvHeads)), Threads, TileBytes(KeyValueRows, shape.HeadSize));

    private static uint Blocks(int rows) => (uint)((rows + BlockRows - 1) / BlockRows);

    private static int TileBytes(int rows, int headSize) => rows * (headSize + Pad) * sizeof(ushort);
}
