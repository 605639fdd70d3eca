using NativeReft.Backends;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Tensors;

namespace NativeReft.Training;

/// <summary>
/// The training loss of a batch: cross-entropy of the response tokens, with the interventions applied to the
/// prompt positions. ForwardBackward also back-propagates into the intervention gradients.
/// The classifier runs on the labelled rows only, never on the whole (batch, T, vocab) logits.
/// </summary>
public static class ReftObjective
{
    /// <summary>
    /// Runs the forward pass on a tape, then the backward pass; gradients (scaled by <paramref name="gradScale"/>,
    /// e.g. 1 / labelled tokens of the whole step) accumulate into the interventions. Returns the summed loss.
    /// </summary>
    public static double ForwardBackward(LlamaModel model, InterventionSet set, ReftBatch batch, double gradScale,
        DropoutMasks? dropout = null)
    {
        double loss = 0;
        ForwardBackward(model, set, batch, dropout, logits => loss = model.Backend.CrossEntropy(logits, batch.Targets, logits, gradScale));
        return loss;
    }

    /// <summary>
    /// <see cref="ForwardBackward(LlamaModel, InterventionSet, ReftBatch, double, DropoutMasks?)"/> inside a training
    /// step: the summed loss is added to <paramref name="step"/>'s, where the backend keeps it, so the host does not
    /// wait for it.
    /// </summary>
    public static void ForwardBackward(LlamaModel model, InterventionSet set, ReftBatch batch, double gradScale,
        DropoutMasks? dropout, StepScalars step)
    {
        ArgumentNullException.ThrowIfNull(step);
        ForwardBackward(model, set, batch, dropout, logits => model.Backend.CrossEntropy(logits, batch.Targets, logits, gradScale, step));
    }

    /// <summary>The summed loss of a batch without gradients (evaluation).</summary>
    public static double Loss(LlamaModel model, InterventionSet? set, ReftBatch batch)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        var backend = model.Backend;
        // On the model's inference ops, not a tape: a tape would record every layer above an intervention, and keep
        // its activations, for a backward that never runs.
        var plan = set is null ? new InterventionPlan() : Plan(set, batch, null, null);
        var hidden = model.Hidden(batch.Tokens, batch.Size, batch.Positions, batch.Mask, plan);
        using var labelled = backend.Empty(batch.LabelledRows.Length, model.Config.Dim);
        backend.GatherRows(hidden, batch.LabelledRows, labelled);
        using var logits = backend.Empty(labelled.Rows, model.Config.VocabSize);
        backend.MatMul(labelled, model.Classifier, logits);
        return backend.CrossEntropy(logits, batch.Targets, logits, 0); // in place: the logits are not read again
    }

    private static void ForwardBackward(LlamaModel model, InterventionSet set, ReftBatch batch, DropoutMasks? dropout,
        Action<Tensor> lossAndGradient)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(batch);
        using var tape = new Tape(model.Backend);
        var plan = Plan(set, batch, dropout, tape);
        var hidden = model.Hidden(tape, batch.Tokens, batch.Size, batch.Positions, batch.Mask, plan);
        var logits = tape.MatMul(tape.Gather(hidden, batch.LabelledRows), model.Classifier);
        lossAndGradient(logits); // dLogits overwrite the logits in place (an (N, V) buffer and its fill saved)
        tape.Seed(logits, logits);
        tape.Backward();
    }

    // The interventions' rows in this batch; with dropout, each one's mask, made on the tape.
    internal static InterventionPlan Plan(InterventionSet set, ReftBatch batch, DropoutMasks? dropout, Tape? tape)
    {
        var plan = new InterventionPlan();
        for (int i = 0; i < set.Interventions.Count; i++)
        {
            var intervention = set.Interventions[i];
            int[] rows = batch.InterventionRows(set, intervention);
            var scale = dropout is null || rows.Length == 0 ? null
                : dropout.Create(tape ?? throw new ArgumentNullException(nameof(tape), "dropout masks are made on a tape"), i, rows.Length, set.Config.Dim);
            plan.Add(new AppliedIntervention(intervention, rows, scale));
        }
        return plan;
    }
}
