using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

// A training step with its scalars on the device (StepValues): the loss, the norm and the optimizer's inputs never
// cross to the host inside the step, so the whole step is queued work, which CaptureStep records as one graph.
public sealed partial class CudaBackend
{
    // Set while CaptureStep records: host tables and indices are staged in page-locked memory the graph keeps.
    private PinnedStaging? captureStaging;
    private long stagedBytesThisStep;

    /// <inheritdoc />
    public StepScalars CreateStepScalars() => new DeviceStepScalars(this);

    /// <summary>The batch's losses are summed on the device into the step's loss (no host wait).</summary>
    public void CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale, StepScalars step)
    {
        var values = Scalars(step);
        ArgumentNullException.ThrowIfNull(logits);
        using var op = Op("cross-entropy", OpWork.CrossEntropy(logits.Rows, logits.Columns));
        using var losses = CrossEntropyRows(logits, targets, dLogits, gradScale);
        crossEntropy.Sum(losses.View, values.Loss, Stream);
    }

    /// <summary>The norm stays on the device; the clipping kernel reads it there and applies the host's rule.</summary>
    public void ClipGradients(IReadOnlyList<Tensor> gradients, double maxNorm, StepScalars step)
    {
        var values = Scalars(step);
        ArgumentNullException.ThrowIfNull(gradients);
        using var segments = Stage<TensorSegment>(Segments(gradients)); // one table serves the norm and the clip
        using (Op("gradient norm", OpWork.Reduction(Elements(gradients), 4)))
        {
            QueueSumOfSquares(segments.View, gradients.Count, values.SumOfSquares);
        }
        using var op = Op("clip", OpWork.Elementwise(Elements(gradients), 4, reads: 1));
        optimizer.Clip(segments.View, gradients.Count, values.View, maxNorm, Stream);
    }

    /// <summary>The learning rate and bias corrections come from the step's values; a non-finite step changes nothing.</summary>
    public void AdamW(IReadOnlyList<AdamWTarget> targets, StepScalars step)
    {
        var values = Scalars(step);
        QueueAdamW(targets, step.Optimizer, values.View);
    }

    /// <summary>Skipped on the device when the step's loss or norm is not finite.</summary>
    public void OrthonormalizeRows(IReadOnlyList<Tensor> matrices, StepScalars step) =>
        QueueOrthonormalizeRows(matrices, Scalars(step).View);

    /// <summary>
    /// Records the device work of a training step, as <paramref name="queue"/> issues it, into a graph that replays
    /// it with one launch (<see cref="CapturedStep.Run"/>): the loss, the norm and the update land in
    /// <paramref name="scalars"/>. Nothing runs while capturing. The step must have run once the same way with
    /// these scalars (Begin, the same ops, Read): that run fills the memory pool, whose blocks the graph then keeps
    /// for itself, and sizes the page-locked memory its host tables and indices are replayed from.
    /// </summary>
    /// <remarks>
    /// A replay repeats the captured step exactly, with new values only for what lives in device memory: the
    /// learning rate and step count (through <paramref name="scalars"/>), the parameters, and the tensors' contents.
    /// The batch (token ids, positions, rows, targets) is the captured one: capture a step whose batch does not
    /// change, as <c>bench train</c>'s does.
    /// </remarks>
    /// <exception cref="InvalidOperationException">The step did not run before, the profiler is on, or the step did
    /// something a graph cannot hold (a host wait, an allocation the pool has not cached).</exception>
    public CapturedStep CaptureStep(StepScalars scalars, Action queue)
    {
        var values = Owned(scalars);
        ArgumentNullException.ThrowIfNull(queue);
        if (values.LastStepStagedBytes is not { } stagedBytes || scalars.InProgress)
        {
            throw new InvalidOperationException("run the step once with these scalars (Begin, its ops, Read) before capturing it: that run fills the memory pool and sizes the graph's staging");
        }
        if (Profiler is not null)
        {
            throw new InvalidOperationException("the op profiler times each op with events between them: switch it off (Profiler = null) before capturing a step");
        }
        var staging = new PinnedStaging(Runtime, stagedBytes);
        var reservation = Runtime.Pool.Reserve();
        DeviceGraph graph;
        try
        {
            captureStaging = staging;
            graph = Runtime.Capture(Stream, () =>
            {
                values.QueueStart();
                queue();
            });
        }
        catch
        {
            reservation.Dispose();
            staging.Dispose();
            throw;
        }
        finally
        {
            captureStaging = null;
            reservation.Close();
        }
        return new CapturedStep(this, graph, values, scalars.Optimizer, reservation, staging);
    }

    // The scalars of the step in progress (or being captured), made by this backend.
    private DeviceStepScalars Scalars(StepScalars step)
    {
        var values = Owned(step);
        if (!step.InProgress && captureStaging is null)
        {
            throw new InvalidOperationException("no training step is in progress: call Begin on the step scalars first");
        }
        return values;
    }

    private DeviceStepScalars Owned(StepScalars step)
    {
        ArgumentNullException.ThrowIfNull(step);
        if (step is not DeviceStepScalars values || !ReferenceEquals(values.Backend, this))
        {
            throw new ArgumentException($"{step.GetType().Name} was not made by this {Name} backend: use its CreateStepScalars", nameof(step));
        }
        return values;
    }

    /// <summary>
    /// One <see cref="StepValues"/> in device memory, and its starting values in page-locked memory: Begin copies
    /// those on the stream (so a graph's replay does too, from the same page-locked address, rewritten before each
    /// replay), Read copies the values back after the stream's work.
    /// </summary>
    internal sealed class DeviceStepScalars : StepScalars
    {
        private readonly DeviceBuffer<StepValues> values;
        private readonly PinnedHostBuffer<StepValues> start;

        public DeviceStepScalars(CudaBackend backend)
        {
            Backend = backend;
            values = new DeviceBuffer<StepValues>(backend.Runtime, 1);
            start = backend.Runtime.AllocatePinned<StepValues>(1);
        }

        public CudaBackend Backend { get; }

        public DeviceView<StepValues> View => values.View;

        public DeviceView<double> Loss => values.View.Cast<double>().Slice(0, 1);

        public DeviceView<double> SumOfSquares => values.View.Cast<double>().Slice(1, 1);

        /// <summary>Bytes the last step read staged from the host; null before any step was read.</summary>
        public long? LastStepStagedBytes { get; private set; }

        /// <summary>A replay's Begin: the starting values are written, the captured copy queues them.</summary>
        public void BeginReplay(in AdamWStep optimizer)
        {
            MarkBegun(optimizer);
            WriteStart(optimizer);
        }

        public void QueueStart()
        {
            Backend.stagedBytesThisStep = 0;
            start.CopyToDeviceAsync(Backend.Runtime, values.View, Backend.Stream);
        }

        protected override void QueueBegin(in AdamWStep optimizer)
        {
            WriteStart(optimizer);
            QueueStart();
        }

        protected override void QueueAfter(StepScalars previous) =>
            Backend.optimizer.StepAfter(values.View, Backend.Owned(previous).View, Backend.Stream);

        protected override (double Loss, double SumOfSquares) ReadValues()
        {
            Span<StepValues> result = stackalloc StepValues[1];
            Backend.Runtime.CopyToHost(values.View, result);
            LastStepStagedBytes = Backend.stagedBytesThisStep;
            Backend.ThrowIfKernelReportedError(); // the host's one wait per step: the place to surface a kernel's flag
            return (result[0].Loss, result[0].SumOfSquares);
        }

        protected override void Dispose(bool disposing)
        {
            values.Dispose();
            start.Dispose();
        }

        // Only between steps (MarkBegun has checked the last one was read, so its copy has run).
        private void WriteStart(in AdamWStep optimizer) =>
            start.Span[0] = StepValues.Start(optimizer.LearningRate, optimizer.Beta1, optimizer.Beta2, optimizer.Step);
    }
}
