namespace NativeReft.Backends;

/// <summary>
/// The scalars of one training step, kept where the backend computes them: the summed loss, the squared global
/// gradient norm, and the optimizer's inputs. The host queues a whole step without waiting (<see cref="Begin(in AdamWStep)"/>,
/// then the ops that take these scalars) and reads the values once, at its end (<see cref="Read"/>); on a GPU the
/// step is then one stretch of queued work, which a CUDA graph can capture and replay.
/// </summary>
/// <remarks>
/// The ops that take a <see cref="StepScalars"/> are <see cref="IBackend.CrossEntropy(Tensors.Tensor, ReadOnlySpan{int}, Tensors.Tensor, double, StepScalars)"/>
/// (adds the batch's loss), <see cref="IBackend.ClipGradients"/> (the norm, then clipping),
/// <see cref="IBackend.AdamW(IReadOnlyList{AdamWTarget}, StepScalars)"/> and
/// <see cref="IBackend.OrthonormalizeRows(IReadOnlyList{Tensors.Tensor}, StepScalars)"/>. The last two change
/// nothing when the loss or the norm is not finite, so a diverged step leaves the parameters as they were.
/// </remarks>
public abstract class StepScalars : IDisposable
{
    private bool begun;

    /// <summary>The optimizer update of the step in progress (or of the last one).</summary>
    public AdamWStep Optimizer { get; private set; }

    /// <summary>Whether a step was begun and not yet read.</summary>
    public bool InProgress => begun;

    /// <summary>
    /// Starts a step: loss and norm back to zero, and <paramref name="optimizer"/> for its AdamW update (queued on
    /// a GPU, in order with the step's ops).
    /// </summary>
    /// <exception cref="InvalidOperationException">The previous step was not read.</exception>
    public void Begin(in AdamWStep optimizer)
    {
        MarkBegun(optimizer);
        QueueBegin(optimizer);
    }

    /// <summary>
    /// Starts a step queued behind <paramref name="previous"/>'s, which need not have been read: if that step's loss
    /// or norm turns out not to be finite (its update skipped), this one changes nothing either, and its loss reads
    /// as not finite too. A trainer can then queue a step before it reads the last, keeping the device busy, and
    /// still report a diverged step with the parameters as they were.
    /// </summary>
    /// <exception cref="InvalidOperationException">The previous step of these scalars was not read.</exception>
    public void Begin(in AdamWStep optimizer, StepScalars previous)
    {
        ArgumentNullException.ThrowIfNull(previous);
        if (ReferenceEquals(previous, this))
        {
            throw new ArgumentException("a step cannot follow itself: queue steps on two step scalars in turn", nameof(previous));
        }
        Begin(optimizer);
        QueueAfter(previous);
    }

    /// <summary>Waits for the step's work and returns its loss and gradient norm; reports a kernel's error flag.</summary>
    /// <exception cref="InvalidOperationException">No step was begun.</exception>
    public StepResult Read()
    {
        if (!begun)
        {
            throw new InvalidOperationException("no training step is in progress: call Begin first");
        }
        begun = false;
        var (loss, sumOfSquares) = ReadValues();
        return new StepResult(loss, Math.Sqrt(sumOfSquares));
    }

    /// <summary>Frees what the scalars hold (device memory on a GPU).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The host half of <see cref="Begin(in AdamWStep)"/>: checks the previous step was read and records the optimizer step. A
    /// replayed graph calls it, its captured work doing the rest.
    /// </summary>
    protected void MarkBegun(in AdamWStep optimizer)
    {
        if (begun)
        {
            throw new InvalidOperationException("the previous training step was not read: call Read before beginning another");
        }
        if (optimizer.Step < 1)
        {
            throw new ArgumentOutOfRangeException(nameof(optimizer), optimizer.Step, "AdamW steps count from 1");
        }
        Optimizer = optimizer;
        begun = true;
    }

    /// <summary>Resets loss and norm and sets the optimizer's inputs for <paramref name="optimizer"/>.</summary>
    protected abstract void QueueBegin(in AdamWStep optimizer);

    /// <summary>Makes this step's loss non-finite when <paramref name="previous"/>'s loss or norm is (queued).</summary>
    protected abstract void QueueAfter(StepScalars previous);

    /// <summary>The step's summed loss and squared gradient norm, once its work has finished.</summary>
    protected abstract (double Loss, double SumOfSquares) ReadValues();

    /// <summary>Frees what the scalars hold.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>What a training step reports.</summary>
/// <param name="Loss">The summed loss of its labelled tokens (scaled as the caller's gradient scale says nothing of).</param>
/// <param name="GradientNorm">The global L2 norm of the gradients before clipping.</param>
public readonly record struct StepResult(double Loss, double GradientNorm);

/// <summary>Step scalars in host memory: for backends whose ops have finished when they return (the CPU).</summary>
internal sealed class HostStepScalars : StepScalars
{
    /// <summary>The loss added so far.</summary>
    public double Loss { get; set; }

    /// <summary>The squared gradient norm.</summary>
    public double SumOfSquares { get; set; }

    /// <summary>Whether the optimizer may update the parameters: loss and norm finite.</summary>
    public bool Finite => double.IsFinite(Loss) && double.IsFinite(SumOfSquares);

    /// <summary>The host scalars <paramref name="scalars"/> must be, for a backend that made them.</summary>
    public static HostStepScalars Of(StepScalars scalars, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(scalars);
        return scalars as HostStepScalars
            ?? throw new ArgumentException($"{scalars.GetType().Name} was not made by {backend.Name}: use its CreateStepScalars", nameof(scalars));
    }

    protected override void QueueBegin(in AdamWStep optimizer) => (Loss, SumOfSquares) = (0, 0);

    // The previous step's ops have run: its values are final.
    protected override void QueueAfter(StepScalars previous)
    {
        var before = previous as HostStepScalars ?? throw new ArgumentException($"{previous.GetType().Name} belongs to another backend", nameof(previous));
        if (!before.Finite)
        {
            Loss = double.IsFinite(before.Loss) ? before.SumOfSquares : before.Loss;
        }
    }

    protected override (double Loss, double SumOfSquares) ReadValues() => (Loss, SumOfSquares);
}
