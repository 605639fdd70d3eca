using System.Runtime.CompilerServices;
using System.Text;
using static NativeReft.Cuda.Interop.CudaDriver;

namespace NativeReft.Cuda;

/// <summary>
/// <see cref="IDeviceRuntime"/> on an NVIDIA GPU through the CUDA driver API: the device's primary context,
/// driver memory behind a <see cref="DeviceMemoryPool"/>, streams, events, graphs, and kernels compiled by NVRTC
/// through a <see cref="KernelCache"/>. Every driver call makes the context current on the calling thread first,
/// so the runtime can be used from any thread.
/// </summary>
public sealed unsafe class CudaRuntime : IDeviceRuntime
{
    // The runtime whose context is current on this thread, as far as this class knows: driver objects released
    // on a thread set their own context and clear this (see ContextBoundHandle), so it never goes stale.
    [ThreadStatic]
    private static CudaRuntime? current;

    private readonly PrimaryContextHandle context;
    private readonly Func<KernelCache> cacheFactory;
    private readonly object moduleGate = new();
    private KernelCache? cache;
    private bool disposed;

    private CudaRuntime(int ordinal, PrimaryContextHandle context, DeviceProperties properties, Func<KernelCache> cacheFactory)
    {
        Ordinal = ordinal;
        this.context = context;
        this.cacheFactory = cacheFactory;
        Properties = properties;
        Pool = new DeviceMemoryPool(this);
        DefaultStream = new CudaStream(this, handle: null);
    }

    /// <summary>The device number.</summary>
    public int Ordinal { get; }

    /// <inheritdoc />
    public string Name => $"cuda:{Ordinal} {Properties.Name} ({Properties.Architecture})";

    /// <inheritdoc />
    public DeviceProperties Properties { get; }

    /// <inheritdoc />
    public DeviceMemoryPool Pool { get; }

    /// <inheritdoc />
    public DeviceStream DefaultStream { get; }

    /// <summary>The kernel cache, created on the first <see cref="LoadModule(string)"/> (which needs NVRTC).</summary>
    public KernelCache KernelCache
    {
        get
        {
            lock (moduleGate)
            {
                return cache ??= cacheFactory();
            }
        }
    }

    internal PrimaryContextHandle Context => context;

    /// <summary>
    /// Opens device <paramref name="ordinal"/>. Throws <see cref="CudaLibraryNotFoundException"/> without a driver
    /// and <see cref="CudaException"/> (CUDA_ERROR_NO_DEVICE...) without a usable GPU. Kernels are cached in
    /// <paramref name="kernelCacheDirectory"/> (default: <see cref="KernelCache.DefaultDirectory"/>).
    /// </summary>
    public static CudaRuntime Create(int ordinal = 0, string? kernelCacheDirectory = null)
    {
        Interop.Libraries.Require(CudaLibrary.Driver);
        Check(cuInit(0));
        Check(cuDeviceGetCount(out int count));
        if (ordinal < 0 || ordinal >= count)
        {
            throw new ArgumentOutOfRangeException(nameof(ordinal), $"device {ordinal} does not exist ({count} CUDA device(s))");
        }
        Check(cuDeviceGet(out int device, ordinal));
        var properties = QueryProperties(ordinal, device);
        var context = PrimaryContextHandle.Retain(device);
        context.MakeCurrent();
        return new CudaRuntime(ordinal, context, properties,
            () => new KernelCache(new NvrtcCompiler(), kernelCacheDirectory));
    }

    /// <summary>Whether the CUDA driver library is installed (a GPU may still be missing or unusable).</summary>
    public static bool IsDriverAvailable => Interop.Libraries.IsAvailable(CudaLibrary.Driver);

    /// <summary>Driver version (e.g. 13000 for CUDA 13.0) and the devices, without creating contexts.</summary>
    public static (int DriverVersion, IReadOnlyList<DeviceProperties> Devices) QueryDevices()
    {
        Interop.Libraries.Require(CudaLibrary.Driver);
        Check(cuDriverGetVersion(out int version));
        Check(cuInit(0));
        Check(cuDeviceGetCount(out int count));
        var devices = new List<DeviceProperties>();
        for (int i = 0; i < count; i++)
        {
            Check(cuDeviceGet(out int device, i));
            devices.Add(QueryProperties(i, device));
        }
        return (version, devices);
    }

    private static DeviceProperties QueryProperties(int ordinal, int device)
    {
        byte* name = stackalloc byte[256];
        Check(cuDeviceGetName(name, 256, device));
        Check(cuDeviceTotalMem(out nuint total, device));
        int Attribute(Interop.CuDeviceAttribute attribute)
        {
            Check(cuDeviceGetAttribute(out int value, attribute, device));
            return value;
        }
        return new DeviceProperties(ordinal, Encoding.UTF8.GetString(name, new ReadOnlySpan<byte>(name, 256).IndexOf((byte)0)),
            Attribute(Interop.CuDeviceAttribute.ComputeCapabilityMajor), Attribute(Interop.CuDeviceAttribute.ComputeCapabilityMinor),
            Attribute(Interop.CuDeviceAttribute.MultiprocessorCount), (long)total,
            Attribute(Interop.CuDeviceAttribute.MaxThreadsPerBlock), Attribute(Interop.CuDeviceAttribute.MaxSharedMemoryPerBlockOptin),
            Attribute(Interop.CuDeviceAttribute.L2CacheSize));
    }

    /// <summary>Makes this runtime's context current on the calling thread (a no-op when it already is).</summary>
    internal void MakeCurrent()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (!ReferenceEquals(current, this))
        {
            context.MakeCurrent();
            current = this;
        }
    }

    /// <summary>Forgets which context is current on this thread (something else changed it).</summary>
    internal static void ForgetCurrentContext() => current = null;

    /// <inheritdoc />
    public DevicePointer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        MakeCurrent();
        var status = cuMemAlloc(out ulong address, (nuint)bytes);
        if (status == Interop.CuResult.OutOfMemory)
        {
            var (name, text) = Describe(status);
            var info = GetMemoryInfo();
            throw new DeviceOutOfMemoryException($"cuMemAlloc({bytes} bytes)", (int)status, name, text, bytes, info.FreeBytes, info.TotalBytes);
        }
        Check(status, $"cuMemAlloc({bytes} bytes)");
        return new DevicePointer(address);
    }

    /// <inheritdoc />
    public void Free(DevicePointer pointer)
    {
        MakeCurrent();
        Check(cuMemFree(pointer.Address));
    }

    /// <inheritdoc />
    public DeviceMemoryInfo GetMemoryInfo()
    {
        MakeCurrent();
        Check(cuMemGetInfo(out nuint free, out nuint total));
        return new DeviceMemoryInfo((long)free, (long)total);
    }

    /// <inheritdoc />
    public DeviceStream CreateStream()
    {
        MakeCurrent();
        var handle = new StreamHandle(context);
        // Not CU_STREAM_NON_BLOCKING: a stream that synchronizes with the legacy default stream sees the results of the
        // synchronous (stream: null) copies and fills, and they see its work, with no extra event.
        Check(cuStreamCreate(out nint stream, Interop.CuFlags.StreamDefault));
        handle.Attach(stream);
        return new CudaStream(this, handle);
    }

    /// <inheritdoc />
    public TimingEvent CreateTimingEvent()
    {
        MakeCurrent();
        var handle = new EventHandle(context);
        Check(cuEventCreate(out nint created, Interop.CuFlags.EventDefault));
        handle.Attach(created);
        return new CudaEvent(this, handle);
    }

    /// <inheritdoc />
    public PinnedHostBuffer<T> AllocatePinned<T>(long length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        MakeCurrent();
        long bytes = checked(length * Unsafe.SizeOf<T>());
        var handle = new PinnedMemoryHandle(context);
        var status = cuMemAllocHost(out nint pointer, (nuint)bytes);
        if (status != Interop.CuResult.Success)
        {
            handle.Dispose();
            Check(status, $"cuMemAllocHost({bytes} bytes)");
        }
        handle.Attach(pointer);
        return new PinnedHostBuffer<T>(handle, length);
    }

    /// <inheritdoc />
    public void CopyHostToDevice(DevicePointer destination, void* source, long bytes, DeviceStream? stream)
    {
        if (bytes == 0)
        {
            return;
        }
        MakeCurrent();
        if (stream is null)
        {
            CheckAndWait(cuMemcpyHtoD(destination.Address, source, (nuint)bytes));
        }
        else
        {
            Check(cuMemcpyHtoDAsync(destination.Address, source, (nuint)bytes, StreamOf(stream)));
        }
    }

    /// <inheritdoc />
    public void CopyDeviceToHost(void* destination, DevicePointer source, long bytes, DeviceStream? stream)
    {
        if (bytes == 0)
        {
            return;
        }
        MakeCurrent();
        if (stream is null)
        {
            Check(cuMemcpyDtoH(destination, source.Address, (nuint)bytes));
        }
        else
        {
            Check(cuMemcpyDtoHAsync(destination, source.Address, (nuint)bytes, StreamOf(stream)));
        }
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(DevicePointer destination, DevicePointer source, long bytes, DeviceStream? stream)
    {
        if (bytes == 0)
        {
            return;
        }
        MakeCurrent();
        if (stream is null)
        {
            CheckAndWait(cuMemcpyDtoD(destination.Address, source.Address, (nuint)bytes));
        }
        else
        {
            Check(cuMemcpyDtoDAsync(destination.Address, source.Address, (nuint)bytes, StreamOf(stream)));
        }
    }

    /// <inheritdoc />
    public void Fill8(DevicePointer destination, byte value, long count, DeviceStream? stream)
    {
        if (count == 0)
        {
            return;
        }
        MakeCurrent();
        if (stream is null)
        {
            CheckAndWait(cuMemsetD8(destination.Address, value, (nuint)count));
        }
        else
        {
            Check(cuMemsetD8Async(destination.Address, value, (nuint)count, StreamOf(stream)));
        }
    }

    /// <inheritdoc />
    public void Fill32(DevicePointer destination, uint value, long count, DeviceStream? stream)
    {
        if (count == 0)
        {
            return;
        }
        MakeCurrent();
        if (stream is null)
        {
            CheckAndWait(cuMemsetD32(destination.Address, value, (nuint)count));
        }
        else
        {
            Check(cuMemsetD32Async(destination.Address, value, (nuint)count, StreamOf(stream)));
        }
    }

    /// <inheritdoc />
    public KernelModule LoadModule(string kernelFile)
    {
        var source = KernelSources.Get(kernelFile);
        var image = KernelCache.GetOrCompile(source, new KernelCompileOptions(Properties.Architecture));
        return LoadModule(image);
    }

    /// <summary>Loads an image compiled elsewhere (a CUBIN for this device's architecture, or PTX).</summary>
    public KernelModule LoadModule(CompiledKernel image)
    {
        ArgumentNullException.ThrowIfNull(image);
        MakeCurrent();
        var handle = new ModuleHandle(context);
        fixed (byte* bytes = image.Image)
        {
            var status = cuModuleLoadData(out nint module, bytes);
            if (status != Interop.CuResult.Success)
            {
                handle.Dispose();
                Check(status, $"cuModuleLoadData({image.FileName}, {image.Kind} for {image.Architecture})");
            }
            handle.Attach(module);
        }
        return new CudaModule(this, image, handle);
    }

    /// <inheritdoc />
    public KernelAttributes GetAttributes(KernelFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        MakeCurrent();
        int Attribute(Interop.CuFunctionAttribute attribute)
        {
            Check(cuFuncGetAttribute(out int value, attribute, function.Handle));
            return value;
        }
        return new KernelAttributes(Attribute(Interop.CuFunctionAttribute.NumRegs), Attribute(Interop.CuFunctionAttribute.SharedSizeBytes),
            Attribute(Interop.CuFunctionAttribute.LocalSizeBytes), Attribute(Interop.CuFunctionAttribute.MaxThreadsPerBlock));
    }

    /// <inheritdoc />
    public void Launch(KernelFunction function, in LaunchConfig config, DeviceStream stream, void** arguments)
    {
        ArgumentNullException.ThrowIfNull(function);
        ArgumentNullException.ThrowIfNull(stream);
        MakeCurrent();
        if (config.SharedMemoryBytes > function.DynamicSharedBytesAllowed)
        {
            AllowDynamicShared(function, config.SharedMemoryBytes);
        }
        var (grid, block) = (config.Grid, config.Block);
        var status = cuLaunchKernel(function.Handle, grid.X, grid.Y, grid.Z, block.X, block.Y, block.Z,
            (uint)config.SharedMemoryBytes, StreamOf(stream), arguments, null);
        if (status != Interop.CuResult.Success)
        {
            throw Error(status, $"cuLaunchKernel({function.Name}, grid ({grid.X}, {grid.Y}, {grid.Z}), block ({block.X}, {block.Y}, {block.Z}), {config.SharedMemoryBytes} B shared)");
        }
    }

    // A block may use 48 KiB of dynamic shared memory; more (up to the device's opt-in limit) needs the function's
    // attribute raised first, once per function and size.
    private void AllowDynamicShared(KernelFunction function, int bytes)
    {
        if (bytes > Properties.MaxSharedMemoryPerBlockOptIn)
        {
            throw new ArgumentException($"{function.Name}: a block asks for {bytes} B of shared memory; {Properties.Name} allows at most {Properties.MaxSharedMemoryPerBlockOptIn} B per block");
        }
        if (bytes > KernelFunction.DefaultDynamicSharedBytes)
        {
            Check(cuFuncSetAttribute(function.Handle, Interop.CuFunctionAttribute.MaxDynamicSharedSizeBytes, bytes));
        }
        function.DynamicSharedBytesAllowed = bytes;
    }

    /// <inheritdoc />
    public DeviceGraph Capture(DeviceStream stream, Action record)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(record);
        if (stream == DefaultStream)
        {
            throw new ArgumentException("the default stream cannot be captured: capture on a stream from CreateStream()", nameof(stream));
        }
        MakeCurrent();
        nint native = StreamOf(stream);
        Check(cuStreamBeginCapture(native, Interop.CuStreamCaptureMode.ThreadLocal));
        var graph = new GraphHandle(context);
        try
        {
            record();
        }
        catch
        {
            // End the capture whatever happened, so the stream is usable again; the partial graph is dropped.
            if (cuStreamEndCapture(native, out nint partial) == Interop.CuResult.Success && partial != 0)
            {
                graph.Attach(partial);
            }
            graph.Dispose();
            throw;
        }
        Check(cuStreamEndCapture(native, out nint captured));
        graph.Attach(captured);
        var exec = new GraphExecHandle(context);
        var status = cuGraphInstantiate(out nint instantiated, captured, 0);
        if (status != Interop.CuResult.Success)
        {
            exec.Dispose();
            graph.Dispose();
            Check(status, "cuGraphInstantiate(captured graph)");
        }
        exec.Attach(instantiated);
        return new CudaGraph(this, graph, exec);
    }

    /// <inheritdoc />
    public void Synchronize()
    {
        MakeCurrent();
        Check(cuCtxSynchronize());
    }

    /// <summary>Frees the pool and releases the primary context (once every stream, module... is released too).</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        MakeCurrent();
        Pool.Dispose();
        disposed = true;
        current = null;
        context.Dispose();
    }

    /// <summary>
    /// Checks a stream-less copy or fill and waits for the default stream: such calls may return before they are
    /// done (a pageable host-to-device copy once the data is staged, a memset at once), and "stream: null" means
    /// finished on return.
    /// </summary>
    private static void CheckAndWait(Interop.CuResult status, [CallerArgumentExpression(nameof(status))] string call = "")
    {
        Check(status, call);
        Check(cuStreamSynchronize(0));
    }

    internal nint StreamOf(DeviceStream stream)
    {
        if (stream is not CudaStream cuda || !ReferenceEquals(cuda.Runtime, this))
        {
            throw new ArgumentException($"{stream} is not a stream of {Name}", nameof(stream));
        }
        return cuda.Native;
    }

    /// <inheritdoc />
    public override string ToString() => Name;
}
