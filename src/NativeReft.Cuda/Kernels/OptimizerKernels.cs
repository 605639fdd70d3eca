namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/optimizer.cu: AdamW, the global sum of squares (gradient norm), scaling (clipping) and
/// the row orthonormalization of LoReFT's R, each one launch over many f32 tensors described by a device-resident
/// table (<see cref="AdamWSegment"/>, <see cref="TensorSegment"/>, <see cref="MatrixSegment"/>; the first
/// <c>count</c> rows are used). Every method queues its launches on the stream given and returns (no
/// synchronization); what can be checked on the host is checked first. The tables' contents live on the device:
/// build them with the segments' checked constructors.
/// </summary>
public sealed class OptimizerKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "optimizer.cu";

    /// <summary>Blocks per segment of <see cref="SumOfSquares"/>: a fixed number, so the partials are too.</summary>
    public const int SumOfSquaresBlocksPerSegment = 16;

    /// <summary>The most segments one launch takes (the grid's y extent).</summary>
    public const int MaxSegments = 65535;

    private const int SegmentBlock = 256;
    private const int FinishBlock = 256;
    private const int MatrixBlock = 256;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction adamw;
    private readonly KernelFunction sumsqPartials;
    private readonly KernelFunction sumsqFinish;
    private readonly KernelFunction scale;
    private readonly KernelFunction clip;
    private readonly KernelFunction orthonormalize;
    private readonly KernelFunction stepAfter;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public OptimizerKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        adamw = module.GetFunction("adamw_step");
        sumsqPartials = module.GetFunction("sumsq_partials");
        sumsqFinish = module.GetFunction("sumsq_finish");
        scale = module.GetFunction("scale_segments");
        clip = module.GetFunction("clip_segments");
        orthonormalize = module.GetFunction("orthonormalize_rows");
        stepAfter = module.GetFunction("step_after");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>
    /// The length of the partials scratch <see cref="SumOfSquares"/> needs for <paramref name="count"/> segments:
    /// <see cref="SumOfSquaresBlocksPerSegment"/> floats per segment.
    /// </summary>
    public static long SumOfSquaresPartialsLength(int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        return (long)count * SumOfSquaresBlocksPerSegment;
    }

    /// <summary>
    /// One AdamW step, exactly CpuBackend&lt;float&gt;.AdamW (bit for bit), on each of the first
    /// <paramref name="count"/> segments: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g g, then
    /// p = p (1 - lr wd) - lr m_hat / (sqrt(v_hat) + eps) with the segment's decoupled weight decay wd. The learning
    /// rate and bias corrections come from <paramref name="step"/> on the device (<see cref="StepValues.Start"/>),
    /// so a captured graph takes each replay's; nothing is updated when the step's loss or norm there is not finite.
    /// </summary>
    public void AdamW(DeviceView<AdamWSegment> segments, int count, DeviceView<StepValues> step, double beta1, double beta2, double epsilon,
        DeviceStream stream)
    {
        RequireTable(segments.Length, count, "adamw");
        RequireStep(step, "adamw");
        if (count > 0)
        {
            runtime.Launch(adamw, SegmentGrid(count), stream, segments.Pointer, count, step.Pointer, (float)beta1, (float)beta2, (float)epsilon);
        }
    }

    /// <summary>
    /// result[0] = the sum of x² over every element of the first <paramref name="count"/> segments, in double (the
    /// squared global gradient norm), deterministic: fixed per-block fp32 partials in <paramref name="partials"/>
    /// (at least <see cref="SumOfSquaresPartialsLength"/>(count) floats of scratch), then one block sums them in a
    /// fixed order in double. No count gives 0. Two launches.
    /// </summary>
    public void SumOfSquares(DeviceView<TensorSegment> segments, int count, DeviceView<float> partials, DeviceView<double> result,
        DeviceStream stream)
    {
        RequireTable(segments.Length, count, "sum of squares");
        long needed = SumOfSquaresPartialsLength(count);
        if (partials.Length < needed)
        {
            throw new ArgumentException($"sum of squares: {partials.Length} partials of scratch for {count} segments, needs {needed}");
        }
        if (result.Length != 1)
        {
            throw new ArgumentException($"sum of squares: the result is one double, not {result.Length}");
        }
        if (count > 0)
        {
            runtime.Launch(sumsqPartials, new LaunchConfig(new Dim3(SumOfSquaresBlocksPerSegment, (uint)count), SegmentBlock), stream,
                partials.Pointer, segments.Pointer, count);
        }
        runtime.Launch(sumsqFinish, new LaunchConfig(1, FinishBlock), stream, result.Pointer, partials.Pointer, checked((int)needed));
    }

    /// <summary>x *= <paramref name="factor"/> over every element of the first <paramref name="count"/> segments (gradient clipping).</summary>
    public void Scale(DeviceView<TensorSegment> segments, int count, float factor, DeviceStream stream)
    {
        RequireTable(segments.Length, count, "scale");
        if (count > 0)
        {
            runtime.Launch(scale, SegmentGrid(count), stream, segments.Pointer, count, factor);
        }
    }

    /// <summary>
    /// Gradient clipping against the norm on the device: with n = sqrt(step.SumOfSquares), when
    /// <paramref name="maxNorm"/> &gt; 0 and n is finite and above it, every element of the first
    /// <paramref name="count"/> segments is multiplied by (float)(maxNorm / (n + 1e-6)), the host's rule in double.
    /// </summary>
    public void Clip(DeviceView<TensorSegment> segments, int count, DeviceView<StepValues> step, double maxNorm, DeviceStream stream)
    {
        RequireTable(segments.Length, count, "clip");
        RequireStep(step, "clip");
        if (count > 0)
        {
            runtime.Launch(clip, SegmentGrid(count), stream, segments.Pointer, count, step.Pointer, maxNorm);
        }
    }

    /// <summary>
    /// Makes the rows of each of the first <paramref name="count"/> matrices orthonormal in place, CpuBackend's
    /// OrthonormalizeRows algorithm (modified Gram-Schmidt of the rows, twice), one block per matrix. A degenerate
    /// row (norm 0 or not finite), or a matrix with more rows than columns, is left as it is and sets
    /// error[0] = 1 (error may be empty: no report); the CPU backend throws there. With a <paramref name="step"/>
    /// (may be empty), nothing changes when that step's loss or norm is not finite.
    /// </summary>
    public void OrthonormalizeRows(DeviceView<MatrixSegment> matrices, int count, DeviceView<StepValues> step, DeviceView<int> error,
        DeviceStream stream)
    {
        RequireTable(matrices.Length, count, "orthonormalize rows");
        if (!step.IsEmpty)
        {
            RequireStep(step, "orthonormalize rows");
        }
        if (!error.IsEmpty && error.Length != 1)
        {
            throw new ArgumentException($"orthonormalize rows: the error flag is one int, not {error.Length}");
        }
        if (count > 0)
        {
            runtime.Launch(orthonormalize, new LaunchConfig((uint)count, MatrixBlock), stream, matrices.Pointer, count, step.Pointer, error.Pointer);
        }
    }

    /// <summary>
    /// Makes <paramref name="next"/>'s loss non-finite when <paramref name="previous"/>'s loss or norm is not: a
    /// step queued behind one that diverged then changes nothing either.
    /// </summary>
    public void StepAfter(DeviceView<StepValues> next, DeviceView<StepValues> previous, DeviceStream stream)
    {
        RequireStep(next, "step after");
        RequireStep(previous, "step after");
        runtime.Launch(stepAfter, new LaunchConfig(1, 1), stream, next.Pointer, previous.Pointer);
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    private static void RequireStep(DeviceView<StepValues> step, string what)
    {
        if (step.Length != 1)
        {
            throw new ArgumentException($"{what}: the step's values are one StepValues, not {step.Length}");
        }
    }

    private static void RequireTable(long tableLength, int count, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count > tableLength)
        {
            throw new ArgumentException($"{what}: {count} segments asked of a table of {tableLength}");
        }
        if (count > MaxSegments)
        {
            throw new ArgumentException($"{what}: {count} segments in one launch, at most {MaxSegments}");
        }
    }

    // (blocks per segment, segments): about eight blocks per multiprocessor over the whole grid, at least one per
    // segment; each block grid-strides over its share, so the count only sets the parallelism, never coverage.
    private LaunchConfig SegmentGrid(int count)
    {
        int multiprocessors = Math.Max(1, runtime.Properties.Multiprocessors);
        int perSegment = Math.Clamp((8 * multiprocessors + count - 1) / count, 1, 1024);
        return new LaunchConfig(new Dim3((uint)perSegment, (uint)count), SegmentBlock);
    }
}
