using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// <see cref="IBackend"/> on a device: kernels/*.cu through their launchers and GEMMs through <see cref="Blas"/>,
/// on a GPU (<see cref="CudaRuntime"/>) or on the CPU kernel emulator (<see cref="EmulatorRuntime"/>), the same
/// code either way. Weights and activations are bf16 with fp32 accumulation inside every kernel; intervention
/// parameters, their gradients and AdamW state are f32 (<see cref="IBackend.ZerosFp32"/>). Ops are split one
/// family per file (CudaBackend.&lt;Op&gt;.cs), mirroring kernels/&lt;op&gt;.cu.
/// </summary>
/// <remarks>
/// All work goes to one stream in order. Host-side indices (tokens, positions, rows, masks, targets) are checked
/// on the host, then copied on the stream from a ring of page-locked memory (<see cref="PinnedUploadRing"/>: from
/// pageable memory CUDA may wait for the stream to stage a copy); while a step is captured as a graph they are
/// staged in page-locked memory the graph keeps.
/// The host waits only where a value comes back: downloads, and once per training step, when its scalars (loss,
/// gradient norm) are read (<see cref="CreateStepScalars"/>). Kernels that index by device data also set an error
/// flag, which is checked at each of those points: a bad index is reported, never silently used.
/// </remarks>
public sealed partial class CudaBackend : IBackend
{
    private readonly bool ownsRuntime;
    private readonly DeviceBuffer<int> errorFlag;      // an index out of range (rope, row gathers, cross-entropy)
    private readonly DeviceBuffer<int> degenerateFlag; // an R whose rows cannot be made orthonormal
    private readonly PinnedUploadRing uploads;         // host tables and indices, copied on the stream
    private readonly Blas blas;
    private readonly ElementwiseKernels elementwise;
    private readonly EmbeddingKernels embedding;
    private readonly RmsNormKernels rmsNorm;
    private readonly RopeKernels rope;
    private readonly SwiGluKernels swiGlu;
    private readonly AttentionKernels attention;
    private readonly InterventionKernels intervention;
    private readonly CrossEntropyKernels crossEntropy;
    private readonly OptimizerKernels optimizer;

    /// <summary>
    /// A backend on <paramref name="runtime"/>; with <paramref name="ownsRuntime"/> it disposes the runtime too.
    /// Loading the kernels compiles them with NVRTC on a GPU (or takes them from the kernel cache).
    /// </summary>
    public CudaBackend(IDeviceRuntime runtime, bool ownsRuntime = false)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        Runtime = runtime;
        this.ownsRuntime = ownsRuntime;
        Stream = runtime.CreateStream();
        uploads = new PinnedUploadRing(runtime, Stream);
        errorFlag = runtime.Allocate<int>(1);
        errorFlag.Clear();
        degenerateFlag = runtime.Allocate<int>(1);
        degenerateFlag.Clear();
        blas = new Blas(runtime);
        elementwise = new ElementwiseKernels(runtime);
        embedding = new EmbeddingKernels(runtime);
        rmsNorm = new RmsNormKernels(runtime);
        rope = new RopeKernels(runtime);
        swiGlu = new SwiGluKernels(runtime);
        attention = new AttentionKernels(runtime);
        intervention = new InterventionKernels(runtime);
        crossEntropy = new CrossEntropyKernels(runtime);
        optimizer = new OptimizerKernels(runtime);
    }

    /// <summary>The device the backend runs on.</summary>
    public IDeviceRuntime Runtime { get; }

    /// <summary>
    /// Why the residual add runs outside the down projection's GEMM (cuBLASLt refused a separate addend, so it is
    /// copied and added in place), or null when the epilogue does it (and on the emulator, whose GEMM always copies).
    /// </summary>
    public string? ResidualEpilogueFallback => blas.SeparateAddendFallback;

    /// <summary>
    /// Which attention kernels run: <see cref="AttentionPath.Auto"/> (default) takes the tensor-core kernels where
    /// they apply (sm_80+, head size 64 or 128, prefill and training) and the direct ones elsewhere.
    /// </summary>
    public AttentionPath AttentionPath
    {
        get => attention.Path;
        set => attention.Path = value;
    }

    /// <summary>
    /// Why the tensor-core attention cannot take a call of <paramref name="shape"/> on this device, or null when
    /// <see cref="AttentionPath.Auto"/> runs it there.
    /// </summary>
    public string? TensorCoreAttentionProblem(AttentionShape shape) => attention.TensorCoreProblem(shape);

    /// <summary>When set, every op records its device time there (a step-time breakdown); null (off) by default.</summary>
    public OpProfiler? Profiler { get; set; }

    /// <summary>The stream every op is queued on.</summary>
    public DeviceStream Stream { get; }

    /// <inheritdoc />
    public string Name => Runtime is EmulatorRuntime ? "emu-bf16" : "cuda-bf16";

    /// <inheritdoc />
    /// <remarks>The emulator runs each op when it is issued, but keeps the contract, so tests take the GPU's path.</remarks>
    public bool QueuesWork => true;

    /// <inheritdoc />
    public DType DType => DType.BF16;

    /// <summary>The first GPU, with its own runtime (disposed with the backend).</summary>
    public static CudaBackend OpenGpu(int ordinal = 0) => new(CudaRuntime.Create(ordinal), ownsRuntime: true);

    /// <summary>The CPU kernel emulator, with its own runtime (disposed with the backend).</summary>
    public static CudaBackend OpenEmulator(bool? check = null) => new(EmulatorRuntime.Create(check), ownsRuntime: true);

    /// <inheritdoc />
    public Tensor Zeros(params int[] shape) => Allocate(DType.BF16, shape, zero: true);

    /// <inheritdoc />
    public Tensor ZerosFp32(params int[] shape) => Allocate(DType.F32, shape, zero: true);

    /// <inheritdoc />
    /// <remarks>
    /// On the emulator the tensor is filled with NaN (all bits set), so an op that reads an element before writing
    /// it puts NaN into every result that depends on it and fails the parity tests (compute-sanitizer's initcheck,
    /// for the CPU).
    /// </remarks>
    public Tensor Empty(params int[] shape)
    {
        var t = Allocate(DType.BF16, shape, zero: false);
        if (Runtime is EmulatorRuntime)
        {
            Runtime.Fill8(t.Bytes.Pointer, 0xFF, t.Bytes.Length, Stream);
        }
        return t;
    }

    /// <inheritdoc />
    public Tensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Allocate(DType.BF16, shape, zero: false);
        RequireLength(data.Length, t, "upload");
        var bf16 = new BFloat16[data.Length];
        for (int i = 0; i < bf16.Length; i++)
        {
            bf16[i] = BFloat16.FromFloat(data[i]);
        }
        Runtime.CopyToDevice<BFloat16>(bf16, t.BFloat16);
        return t;
    }

    /// <inheritdoc />
    public Tensor UploadFp32(ReadOnlySpan<float> data, params int[] shape)
    {
        var t = Allocate(DType.F32, shape, zero: false);
        RequireLength(data.Length, t, "upload");
        Runtime.CopyToDevice(data, t.Float);
        return t;
    }

    /// <summary>Random bf16 values made on the device (a 7B model's weights in well under a second).</summary>
    public Tensor RandomUniform(int[] shape, float scale, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var t = Allocate(DType.BF16, shape, zero: false);
        using var op = Op("random", OpWork.Elementwise(t.Length, 2, reads: 0));
        elementwise.FillUniform(t.BFloat16, seed, scale, Stream);
        return t;
    }

    /// <summary>The masks are made on the device: a step with dropout uploads nothing.</summary>
    public Tensor DropoutScale(int rows, int dim, double probability, ulong stream)
    {
        var t = Allocate(DType.F32, [rows, dim], zero: false);
        using var op = Op("dropout mask", OpWork.Elementwise(t.Length, 4, reads: 0));
        elementwise.FillDropoutScale(t.Float, stream, probability, Stream);
        return t;
    }

    /// <summary>Reads the weight as bf16 (a bf16 checkpoint's bytes as they are) and copies it to the device.</summary>
    public Tensor LoadWeight(WeightTensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        var t = Allocate(DType.BF16, weight.Shape, zero: false);
        var bf16 = new BFloat16[weight.ElementCount];
        weight.ReadInto(bf16);
        Runtime.CopyToDevice<BFloat16>(bf16, t.BFloat16);
        return t;
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<float> destination)
    {
        var t = Cast(source);
        if (destination.Length != t.Length)
        {
            throw new ArgumentException($"destination holds {destination.Length}, tensor {t.ShapeText} has {t.Length}", nameof(destination));
        }
        ThrowIfKernelReportedError();
        if (t.DType == DType.F32)
        {
            Runtime.CopyToHost(t.Float, destination);
            return;
        }
        var bf16 = new BFloat16[t.Length];
        Runtime.CopyToHost<BFloat16>(t.BFloat16, bf16);
        for (int i = 0; i < bf16.Length; i++)
        {
            destination[i] = bf16[i].ToFloat();
        }
    }

    /// <inheritdoc />
    public void Copy(Tensor source, Tensor destination)
    {
        var (s, d) = (Cast(source), Cast(destination));
        using var op = Op("copy", OpWork.Elementwise(s.Bytes.Length, 1, reads: 1));
        RequireSameShape(s, d, "copy");
        if (s.DType != d.DType)
        {
            throw new ArgumentException($"copy: {s} and {d} differ in type");
        }
        Runtime.CopyDeviceToDevice(d.Bytes.Pointer, s.Bytes.Pointer, s.Bytes.Length, Stream);
    }

    /// <summary>Waits for the queued work and reports an index out of range (or a degenerate R) a kernel flagged.</summary>
    public void Synchronize()
    {
        Stream.Synchronize();
        ThrowIfKernelReportedError();
    }

    /// <summary>Releases the kernels, the GEMM handle and (when owned) the runtime.</summary>
    public void Dispose()
    {
        optimizer.Dispose();
        crossEntropy.Dispose();
        intervention.Dispose();
        attention.Dispose();
        swiGlu.Dispose();
        rope.Dispose();
        rmsNorm.Dispose();
        embedding.Dispose();
        elementwise.Dispose();
        blas.Dispose();
        errorFlag.Dispose();
        degenerateFlag.Dispose();
        uploads.Dispose();
        Stream.Dispose();
        if (ownsRuntime)
        {
            Runtime.Dispose();
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"{Name} on {Runtime.Name}";

    // Times the op (when profiling) with the work it must do, for the breakdown's GB/s and TFLOP/s.
    private OpProfiler.Scope Op(string name, in OpWork work) => Profiler?.Begin(name, work, Stream) ?? default;

    private CudaTensor Allocate(DType type, ReadOnlySpan<int> shape, bool zero)
    {
        var t = new CudaTensor(this, type, shape);
        if (zero)
        {
            Runtime.Fill8(t.Bytes.Pointer, 0, t.Bytes.Length, Stream);
        }
        return t;
    }

    // Copies host indices or tables to the device on the stream (pooled memory, returned when the lease is
    // disposed: whatever reuses it later is queued on the same stream, after the kernels that read it). Counted
    // per step, so a capture knows how much page-locked memory to set aside for them.
    private DeviceBuffer<T> Stage<T>(ReadOnlySpan<T> values)
        where T : unmanaged
    {
        var buffer = new DeviceBuffer<T>(Runtime, values.Length);
        if (values.IsEmpty)
        {
            return buffer;
        }
        stagedBytesThisStep += PinnedStaging.SlotBytes(buffer.SizeInBytes);
        if (captureStaging is { } staging)
        {
            staging.CopyToDevice(values, buffer.View, Stream); // a graph replays it from page-locked memory
        }
        else if (!uploads.TryCopyToDevice(values, buffer.View))
        {
            buffer.CopyFrom(values, Stream); // more than the ring takes: from pageable memory
        }
        return buffer;
    }

    // The flags kernels set instead of throwing; read (and cleared) wherever the host waits anyway.
    private void ThrowIfKernelReportedError()
    {
        if (TakeFlag(errorFlag))
        {
            throw new InvalidOperationException(
                "a kernel met an index out of range (a token id, position, row or target): the results of the last step are invalid. This is a bug in the caller; the host-side checks should have caught it.");
        }
        if (TakeFlag(degenerateFlag))
        {
            throw new InvalidOperationException(
                "a row of an orthonormal projection R has zero or non-finite norm, so it cannot be made orthonormal: training diverged. Lower --lr or keep --max-grad-norm on.");
        }
    }

    private bool TakeFlag(DeviceBuffer<int> flag)
    {
        Span<int> value = stackalloc int[1];
        Runtime.CopyToHost(flag.View, value);
        if (value[0] == 0)
        {
            return false;
        }
        flag.Clear();
        return true;
    }

    private CudaTensor Cast(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t is not CudaTensor c || !ReferenceEquals(c.Backend, this))
        {
            throw new ArgumentException($"{t} does not belong to {Name}");
        }
        return c;
    }

    private static void RequireLength(long actual, Tensor t, string what)
    {
        if (actual != t.Length)
        {
            throw new ArgumentException($"{what}: {actual} values do not fill shape {t.ShapeText}");
        }
    }

    private static void RequireSameShape(Tensor a, Tensor b, string what)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
        {
            throw new ArgumentException($"{what}: shapes {a.ShapeText} and {b.ShapeText} differ");
        }
    }

    private static void RequireSameLength(Tensor a, Tensor b, string what)
    {
        if (a.Length != b.Length)
        {
            throw new ArgumentException($"{what}: {a.ShapeText} and {b.ShapeText} differ in size");
        }
    }
}
