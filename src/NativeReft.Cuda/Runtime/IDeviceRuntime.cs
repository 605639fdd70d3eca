namespace NativeReft.Cuda;

/// <summary>Raw device memory: what the caching allocator (<see cref="DeviceMemoryPool"/>) sits on.</summary>
public interface IDeviceMemory
{
    /// <summary>
    /// Allocates <paramref name="bytes"/> of device memory (aligned to at least 256 bytes).
    /// Throws <see cref="DeviceOutOfMemoryException"/>, with the requested and free bytes, when it cannot.
    /// </summary>
    DevicePointer Allocate(long bytes);

    /// <summary>Frees memory that <see cref="Allocate"/> returned.</summary>
    void Free(DevicePointer pointer);

    /// <summary>Free and total device memory.</summary>
    DeviceMemoryInfo GetMemoryInfo();
}

/// <summary>
/// One device and everything that runs on it: memory, copies, streams, events, kernels, graphs. The CUDA
/// implementation is <see cref="CudaRuntime"/>; an emulated runtime (device memory is host memory, kernels are
/// kernels/*.cu compiled by g++) implements the same interface, so the CUDA backend's orchestration runs on a
/// machine without a GPU.
/// </summary>
/// <remarks>
/// Copies and fills take a <see cref="DeviceStream"/>: with one, the operation is ordered on that stream and
/// returns once the host memory may be reused (asynchronous for <see cref="PinnedHostBuffer{T}"/> memory); with
/// null, it runs after all work queued so far on the device and has finished when the call returns (the simple,
/// slow path for setup and tests). Launches are always asynchronous on the stream given. Nothing else
/// synchronizes behind the caller's back.
/// </remarks>
public interface IDeviceRuntime : IDeviceMemory, IDisposable
{
    /// <summary>Short name for messages, e.g. "cuda:0 NVIDIA H100 80GB HBM3 (sm_90)".</summary>
    string Name { get; }

    /// <summary>What the device is.</summary>
    DeviceProperties Properties { get; }

    /// <summary>The caching allocator every <see cref="DeviceBuffer{T}"/> of this runtime comes from.</summary>
    DeviceMemoryPool Pool { get; }

    /// <summary>The device's default stream (not capturable; never disposed).</summary>
    DeviceStream DefaultStream { get; }

    /// <summary>A new stream (ordered after synchronous, stream-less copies and fills, like the default stream).</summary>
    DeviceStream CreateStream();

    /// <summary>A new event for timing work on a stream.</summary>
    TimingEvent CreateTimingEvent();

    /// <summary>Page-locked host memory for asynchronous copies.</summary>
    PinnedHostBuffer<T> AllocatePinned<T>(long length)
        where T : unmanaged;

    /// <summary>Copies host memory to the device (see the remarks on streams).</summary>
    unsafe void CopyHostToDevice(DevicePointer destination, void* source, long bytes, DeviceStream? stream);

    /// <summary>Copies device memory to the host (see the remarks on streams).</summary>
    unsafe void CopyDeviceToHost(void* destination, DevicePointer source, long bytes, DeviceStream? stream);

    /// <summary>Copies device memory to device memory.</summary>
    void CopyDeviceToDevice(DevicePointer destination, DevicePointer source, long bytes, DeviceStream? stream);

    /// <summary>Sets <paramref name="count"/> bytes to <paramref name="value"/>.</summary>
    void Fill8(DevicePointer destination, byte value, long count, DeviceStream? stream);

    /// <summary>Sets <paramref name="count"/> 32-bit words to <paramref name="value"/> (4-byte aligned).</summary>
    void Fill32(DevicePointer destination, uint value, long count, DeviceStream? stream);

    /// <summary>Loads the kernels of one kernels/*.cu file, compiling it (or taking it from the cache) for this device.</summary>
    KernelModule LoadModule(string kernelFile);

    /// <summary>Registers, shared and local memory of a loaded kernel, as the device reports them.</summary>
    KernelAttributes GetAttributes(KernelFunction function);

    /// <summary>
    /// Launches <paramref name="function"/> on <paramref name="stream"/>. <paramref name="arguments"/> points to
    /// one pointer per kernel parameter, each to a value laid out exactly as the parameter's C type; the typed
    /// overloads in <see cref="DeviceRuntimeExtensions"/> build that array on the stack.
    /// </summary>
    unsafe void Launch(KernelFunction function, in LaunchConfig config, DeviceStream stream, void** arguments);

    /// <summary>
    /// Records the work that <paramref name="record"/> issues on <paramref name="stream"/> into a graph, without
    /// running it; the graph then replays it with one launch. The work must not allocate device memory (warm the
    /// pool up first) nor synchronize.
    /// </summary>
    DeviceGraph Capture(DeviceStream stream, Action record);

    /// <summary>Waits until all work on the device has finished.</summary>
    void Synchronize();
}

/// <summary>What a device is.</summary>
/// <param name="Ordinal">The device number.</param>
/// <param name="Name">The marketing name, e.g. "NVIDIA H100 80GB HBM3".</param>
/// <param name="ComputeMajor">Compute capability, major.</param>
/// <param name="ComputeMinor">Compute capability, minor.</param>
/// <param name="Multiprocessors">Streaming multiprocessors.</param>
/// <param name="TotalMemoryBytes">Device memory.</param>
/// <param name="MaxThreadsPerBlock">Largest block.</param>
/// <param name="MaxSharedMemoryPerBlockOptIn">Largest dynamic shared memory a kernel can opt in to.</param>
/// <param name="L2CacheBytes">L2 cache size.</param>
public sealed record DeviceProperties(int Ordinal, string Name, int ComputeMajor, int ComputeMinor, int Multiprocessors,
    long TotalMemoryBytes, int MaxThreadsPerBlock, int MaxSharedMemoryPerBlockOptIn, int L2CacheBytes)
{
    /// <summary>The real architecture NVRTC compiles for, e.g. "sm_90".</summary>
    public string Architecture => $"sm_{ComputeMajor}{ComputeMinor}";
}

/// <summary>A grid or block size.</summary>
/// <param name="X">Extent along x.</param>
/// <param name="Y">Extent along y.</param>
/// <param name="Z">Extent along z.</param>
public readonly record struct Dim3(uint X, uint Y = 1, uint Z = 1)
{
    /// <summary>A one-dimensional size.</summary>
    public static implicit operator Dim3(uint x) => new(x);

    /// <summary>A one-dimensional size (the named alternative to the conversion).</summary>
    public static Dim3 FromUInt32(uint x) => new(x);
}

/// <summary>How a kernel is launched.</summary>
/// <param name="Grid">Blocks.</param>
/// <param name="Block">Threads per block.</param>
/// <param name="SharedMemoryBytes">Dynamic shared memory per block.</param>
public readonly record struct LaunchConfig(Dim3 Grid, Dim3 Block, int SharedMemoryBytes = 0)
{
    /// <summary>
    /// A one-dimensional launch of <paramref name="block"/> threads per block covering <paramref name="n"/>
    /// elements, the grid capped for grid-stride kernels (which cover the rest in their loop).
    /// </summary>
    public static LaunchConfig ForElements(long n, int block = 256, uint maxBlocks = 65535 * 32)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(block);
        long blocks = Math.Clamp((n + block - 1) / block, 1, maxBlocks);
        return new LaunchConfig((uint)blocks, (uint)block);
    }

    /// <summary>
    /// A grid-stride launch over n bf16 elements (or rotary pairs) taken 8 at a time (one 128-bit access per thread
    /// and step), as the kernels that read Pack&lt;bf16, 8&gt; do.
    /// </summary>
    public static LaunchConfig ForBFloat16Packs(long n) => ForElements((n + 7) / 8);
}

/// <summary>What a loaded kernel uses, as the device reports it (cuFuncGetAttribute).</summary>
/// <param name="Registers">Registers per thread.</param>
/// <param name="StaticSharedBytes">Static shared memory per block.</param>
/// <param name="LocalBytes">Local memory per thread (stack frame and spills).</param>
/// <param name="MaxThreadsPerBlock">Largest block this kernel can launch with.</param>
public readonly record struct KernelAttributes(int Registers, int StaticSharedBytes, int LocalBytes, int MaxThreadsPerBlock);
