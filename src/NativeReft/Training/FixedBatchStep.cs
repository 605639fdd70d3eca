using NativeReft.Backends;
using NativeReft.Model;
using NativeReft.Reft;

namespace NativeReft.Training;

/// <summary>
/// A training step on one batch that does not change, as benchmarks time it: zero the gradients, forward and
/// backward (the loss averaged over the batch's labelled tokens), clip, AdamW and the retraction, all queued with
/// the scalars on the backend (<see cref="Queue"/>, the unit a GPU backend can capture as one graph).
/// </summary>
public sealed class FixedBatchStep(LlamaModel model, InterventionSet set, ReftBatch batch, double maxGradNorm = 1.0) : IDisposable
{
    /// <summary>The optimizer (its step counter drives the bias correction).</summary>
    public AdamWOptimizer Optimizer { get; } = new();

    /// <summary>Where the step's loss and norm land.</summary>
    public StepScalars Scalars { get; } = model.Backend.CreateStepScalars();

    /// <summary>Queues the step's work; call it between <c>Scalars.Begin</c> and <c>Scalars.Read</c>.</summary>
    public void Queue()
    {
        set.ZeroGradients();
        ReftObjective.ForwardBackward(model, set, batch, 1.0 / batch.Targets.Length, null, Scalars);
        AdamWOptimizer.ClipGradients(set, maxGradNorm, Scalars);
        Optimizer.Apply(set, Scalars);
    }

    /// <summary>One whole step with learning rate <paramref name="learningRate"/>: begin, queue, read.</summary>
    public StepResult Run(double learningRate)
    {
        Scalars.Begin(Optimizer.Next(learningRate));
        Queue();
        return Scalars.Read();
    }

    /// <summary>Frees the scalars.</summary>
    public void Dispose() => Scalars.Dispose();
}
