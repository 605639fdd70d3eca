using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static NativeReft.Cuda.Interop.Emulator;

namespace NativeReft.Cuda;

/// <summary>
/// <see cref="IDeviceRuntime"/> on the CPU kernel emulator: kernels/*.cu compiled by g++ (libnativereft_emu.so,
/// built by cmake on <c>dotnet build</c>), device memory is host memory, every stream runs its work in order on
/// the calling thread (a call returns when its work is done), events time with <see cref="Stopwatch"/>, graphs
/// record the work issued on the capturing stream and replay it. Code written against
/// <see cref="IDeviceRuntime"/> runs on it unchanged.
/// </summary>
/// <remarks>
/// Check mode (<c>NATIVEREFT_EMU_CHECK=1</c>, or <c>check: true</c>) puts every allocation between guard pages,
/// ending exactly at the rear one (so buffers are aligned only to their element size), and turns a fault inside a
/// kernel into an <see cref="EmulatedKernelException"/> naming the kernel, block and thread. A
/// <c>__syncthreads()</c> that not every thread of a block reaches is reported the same way, check mode or not.
/// </remarks>
public sealed unsafe class EmulatorRuntime : IDeviceRuntime
{
    /// <summary>The environment variable that turns check mode on for <see cref="Create"/>'s default.</summary>
    public const string CheckVariable = "NATIVEREFT_EMU_CHECK";

    private readonly EmulatorStream defaultStream;
    private readonly Dictionary<nint, long> pinned = new(); // page-locked blocks: start, bytes
    private int capturing;
    private long hostWaits;
    private bool disposed;

    private EmulatorRuntime(bool check)
    {
        CheckMode = check;
        Threads = emu_threads();
        long memory = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        Properties = new DeviceProperties(0, "NativeReft kernel emulator", 9, 0, Threads, memory, 1024, 227 * 1024, 0);
        Pool = new DeviceMemoryPool(this, exactSizes: check);
        defaultStream = new EmulatorStream(this, "default stream");
    }

    /// <summary>Whether libnativereft_emu.so is built and loads.</summary>
    public static bool IsAvailable => Interop.Emulator.IsAvailable;

    /// <summary>Why the emulator library is unavailable, or null when it is available.</summary>
    public static string? Problem => Interop.Emulator.Problem;

    /// <summary>Whether allocations are guarded and faults in kernels reported (see the remarks).</summary>
    public bool CheckMode { get; }

    /// <summary>CPU threads that blocks are spread over.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public string Name => $"emulator ({Threads} CPU threads{(CheckMode ? ", check mode" : "")})";

    /// <inheritdoc />
    public DeviceProperties Properties { get; }

    /// <inheritdoc />
    public DeviceMemoryPool Pool { get; }

    /// <inheritdoc />
    public DeviceStream DefaultStream => defaultStream;

    /// <summary>
    /// Opens the emulator. <paramref name="check"/> defaults to <see cref="CheckVariable"/> being "1" or "true".
    /// Check mode is process-wide in the emulator library: the last runtime created sets it.
    /// </summary>
    public static EmulatorRuntime Create(bool? check = null)
    {
        if (!IsAvailable)
        {
            throw new DllNotFoundException($"the kernel emulator is not available: {Problem}");
        }
        string? variable = Environment.GetEnvironmentVariable(CheckVariable);
        bool enabled = check ?? (variable == "1" || string.Equals(variable, "true", StringComparison.OrdinalIgnoreCase));
        emu_set_check(enabled ? 1 : 0);
        return new EmulatorRuntime(enabled);
    }

    /// <summary>
    /// Loads a shared library of more kernels built against the emulator (as cmake/ builds
    /// libnativereft_emu_testkernels.so); its kernels register themselves under their file's name.
    /// </summary>
    public static void LoadKernelLibrary(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        Interop.Emulator.LoadKernelLibrary(path);
    }

    /// <inheritdoc />
    public DevicePointer Allocate(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ObjectDisposedException.ThrowIf(disposed, this);
        RequireNoCapture("cuMemAlloc");
        void* pointer = emu_alloc((nuint)bytes, CheckMode ? 1 : 0);
        if (pointer == null)
        {
            var info = GetMemoryInfo();
            throw new DeviceOutOfMemoryException($"emu_alloc({bytes} bytes)", 2, "OUT_OF_MEMORY", "host memory exhausted", bytes, info.FreeBytes, info.TotalBytes);
        }
        return new DevicePointer((ulong)pointer);
    }

    /// <inheritdoc />
    public void Free(DevicePointer pointer) => emu_free((void*)pointer.Address);

    /// <inheritdoc />
    public DeviceMemoryInfo GetMemoryInfo()
    {
        var info = GC.GetGCMemoryInfo();
        return new DeviceMemoryInfo(Math.Max(0, info.TotalAvailableMemoryBytes - info.MemoryLoadBytes), info.TotalAvailableMemoryBytes);
    }

    /// <inheritdoc />
    public DeviceStream CreateStream()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        return new EmulatorStream(this, "stream");
    }

    /// <inheritdoc />
    public TimingEvent CreateTimingEvent() => new EmulatorEvent(this);

    /// <inheritdoc />
    public PinnedHostBuffer<T> AllocatePinned<T>(long length)
        where T : unmanaged
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(length);
        long bytes = checked(length * Unsafe.SizeOf<T>());
        nint start = (nint)NativeMemory.AlignedAlloc((nuint)bytes, 64);
        lock (pinned)
        {
            pinned.Add(start, bytes);
        }
        return new PinnedHostBuffer<T>(new HostMemoryHandle(start, () =>
        {
            lock (pinned)
            {
                pinned.Remove(start);
            }
        }), length);
    }

    /// <summary>
    /// The calls so far that make a GPU's host wait for its device, or may: a stream, event or device synchronize,
    /// a stream-less copy or fill, and a copy on a stream from or to pageable memory (CUDA may wait for the stream
    /// to stage it). Here every call has finished its work when it returns, so they are only counted: the tests
    /// check that a training step's queued work has none.
    /// </summary>
    public long HostWaits => Interlocked.Read(ref hostWaits);

    /// <inheritdoc />
    public void CopyHostToDevice(DevicePointer destination, void* source, long bytes, DeviceStream? stream)
    {
        if (stream is not null && !IsPinned(source, bytes))
        {
            if (RequireStream(stream).Recording is not null)
            {
                // A graph replays the copy from this address long after the call: CUDA takes only page-locked memory.
                throw new InvalidOperationException("a captured host-to-device copy must read page-locked memory (AllocatePinned), not pageable memory");
            }
            CountHostWait();
        }
        Copy((void*)destination.Address, source, bytes, stream);
    }

    /// <inheritdoc />
    public void CopyDeviceToHost(void* destination, DevicePointer source, long bytes, DeviceStream? stream)
    {
        if (stream is not null && !IsPinned(destination, bytes))
        {
            CountHostWait(); // to pageable memory the call returns once the copy is done
        }
        Copy(destination, (void*)source.Address, bytes, stream);
    }

    /// <inheritdoc />
    public void CopyDeviceToDevice(DevicePointer destination, DevicePointer source, long bytes, DeviceStream? stream) =>
        Copy((void*)destination.Address, (void*)source.Address, bytes, stream);

    /// <inheritdoc />
    public void Fill8(DevicePointer destination, byte value, long count, DeviceStream? stream)
    {
        if (Recorded(stream, () => Fill8(destination, value, count, stream)))
        {
            return;
        }
        NativeMemory.Fill((void*)destination.Address, (nuint)count, value);
    }

    /// <inheritdoc />
    public void Fill32(DevicePointer destination, uint value, long count, DeviceStream? stream)
    {
        if (Recorded(stream, () => Fill32(destination, value, count, stream)))
        {
            return;
        }
        uint* words = (uint*)destination.Address;
        for (long done = 0; done < count; done += int.MaxValue)
        {
            new Span<uint>(words + done, (int)Math.Min(int.MaxValue, count - done)).Fill(value);
        }
    }

    /// <inheritdoc />
    public KernelModule LoadModule(string kernelFile)
    {
        ArgumentNullException.ThrowIfNull(kernelFile);
        ObjectDisposedException.ThrowIf(disposed, this);
        if (emu_kernel_count(kernelFile) == 0)
        {
            throw new ArgumentException($"the emulator has no kernels from {kernelFile} (kernels/*.cu are built in; other files come from LoadKernelLibrary)", nameof(kernelFile));
        }
        return new EmulatorModule(new CompiledKernel(kernelFile, "host", KernelImageKind.Host, [], ""));
    }

    /// <summary>
    /// The emulator has no registers or local memory to report; shared memory is host memory. What is reported
    /// is the launch limit: the kernel's <c>__launch_bounds__</c>, else the device's 1024.
    /// </summary>
    public KernelAttributes GetAttributes(KernelFunction function)
    {
        ArgumentNullException.ThrowIfNull(function);
        return new KernelAttributes(0, 0, 0, MaxThreadsPerBlock(function));
    }

    /// <summary>Runs the kernel; a launch shape a GPU refuses (<see cref="LaunchLimits"/>) is refused here too.</summary>
    public void Launch(KernelFunction function, in LaunchConfig config, DeviceStream stream, void** arguments)
    {
        ArgumentNullException.ThrowIfNull(function);
        LaunchLimits.Check(function.Name, config, MaxThreadsPerBlock(function), Properties.MaxSharedMemoryPerBlockOptIn);
        var emulated = RequireStream(stream);
        if (emulated.Recording is { } recording)
        {
            recording.Add(LaunchRecord.Capture(this, function, config, arguments));
            return;
        }
        var (grid, block) = (config.Grid, config.Block);
        int status = emu_launch_kernel(function.Handle, new EmuDim3(grid.X, grid.Y, grid.Z), new EmuDim3(block.X, block.Y, block.Z),
            (nuint)config.SharedMemoryBytes, 0, arguments);
        if (status != 0)
        {
            throw new EmulatedKernelException(function.Name, LastError());
        }
    }

    private static int MaxThreadsPerBlock(KernelFunction function) =>
        function.Module is EmulatorModule module && module.LaunchBounds.TryGetValue(function.Name, out int bound)
            ? bound
            : LaunchLimits.MaxThreadsPerBlock;

    /// <inheritdoc />
    public DeviceGraph Capture(DeviceStream stream, Action record)
    {
        ArgumentNullException.ThrowIfNull(record);
        var emulated = RequireStream(stream);
        if (stream == DefaultStream)
        {
            throw new ArgumentException("the default stream cannot be captured: capture on a stream from CreateStream()", nameof(stream));
        }
        var steps = new List<Action<DeviceStream>>();
        emulated.Recording = steps;
        capturing++;
        try
        {
            record();
        }
        finally
        {
            capturing--;
            emulated.Recording = null;
        }
        return new EmulatorGraph(this, steps);
    }

    /// <summary>
    /// The emulator's CPU GEMM in cuBLAS's column-major terms (cublasGemmStridedBatchedEx with fp32 compute), run
    /// in order on <paramref name="stream"/> or recorded when the stream is capturing.
    /// </summary>
    internal void GemmStridedBatched(DeviceStream stream, in ColumnMajorGemm gemm)
    {
        var g = gemm;
        if (Recorded(stream, () => GemmStridedBatched(DefaultStream, g)))
        {
            return;
        }
        int status = emu_gemm_strided_batched(g.TransposeA ? 1 : 0, g.TransposeB ? 1 : 0, g.M, g.N, g.K, g.Alpha,
            g.A.Address, EmulatorType(g.AType), g.Lda, g.StrideA, g.B.Address, EmulatorType(g.BType), g.Ldb, g.StrideB, g.Beta,
            g.C.Address, EmulatorType(g.CType), g.Ldc, g.StrideC, g.Batch);
        if (status != 0)
        {
            throw new EmulatedKernelException("gemm", LastError());
        }
    }

    private static int EmulatorType(Interop.CudaDataType type) => type switch
    {
        Interop.CudaDataType.R32F => TypeFloat32,
        Interop.CudaDataType.R16BF => TypeBFloat16,
        _ => throw new NotSupportedException($"the emulator's GEMM takes f32 and bf16, not {type}"),
    };

    /// <summary>Nothing to wait for: every call has finished its work when it returns.</summary>
    public void Synchronize()
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        RequireNoCapture("cuCtxSynchronize");
        CountHostWait();
    }

    internal void CountHostWait() => Interlocked.Increment(ref hostWaits);

    /// <summary>Frees the pool.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        Pool.Dispose();
        disposed = true;
    }

    /// <inheritdoc />
    public override string ToString() => Name;

    internal EmulatorStream RequireStream(DeviceStream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (stream is not EmulatorStream emulated || !ReferenceEquals(emulated.Runtime, this))
        {
            throw new ArgumentException($"{stream} is not a stream of {Name}", nameof(stream));
        }
        return emulated;
    }

    // Work on a capturing stream is recorded for the graph instead of run (replayed on the graph's stream).
    // Stream-less work (it would synchronize the device) fails during a capture, as CUDA's thread-local mode has it.
    private bool Recorded(DeviceStream? stream, Action run)
    {
        if (stream is null)
        {
            RequireNoCapture("a synchronous copy or fill");
            CountHostWait();
            return false;
        }
        if (RequireStream(stream).Recording is not { } recording)
        {
            return false;
        }
        recording.Add(_ => run());
        return true;
    }

    private void RequireNoCapture(string what)
    {
        if (capturing > 0)
        {
            throw new InvalidOperationException($"{what} is not permitted while a stream is capturing a graph (CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED): everything a captured step does must be queued on its stream");
        }
    }

    private bool IsPinned(void* source, long bytes)
    {
        nint start = (nint)source;
        lock (pinned)
        {
            foreach (var (block, length) in pinned)
            {
                if (start >= block && start + (nint)bytes <= block + (nint)length)
                {
                    return true;
                }
            }
        }
        return false;
    }

    private void Copy(void* destination, void* source, long bytes, DeviceStream? stream)
    {
        if (bytes == 0)
        {
            return;
        }
        if (Recorded(stream, () => Copy(destination, source, bytes, null)))
        {
            return;
        }
        Buffer.MemoryCopy(source, destination, bytes, bytes);
    }
}

/// <summary>A kernel failed under the emulator: a fault, barrier divergence or a bad launch, naming the kernel.</summary>
public sealed class EmulatedKernelException : Exception
{
    /// <summary>Creates the exception for <paramref name="kernel"/>.</summary>
    public EmulatedKernelException(string kernel, string message)
        : base(message)
    {
        Kernel = kernel;
    }

    /// <summary>Creates the exception (for serializers and analyzers).</summary>
    public EmulatedKernelException()
    {
        Kernel = "";
    }

    /// <summary>Creates the exception (for serializers and analyzers).</summary>
    public EmulatedKernelException(string message)
        : base(message)
    {
        Kernel = "";
    }

    /// <summary>Creates the exception (for serializers and analyzers).</summary>
    public EmulatedKernelException(string message, Exception innerException)
        : base(message, innerException)
    {
        Kernel = "";
    }

    /// <summary>The kernel's name.</summary>
    public string Kernel { get; }
}
