using NativeReft.Backends;
using NativeReft.Reft;

namespace NativeReft.Training;

/// <summary>
/// AdamW over every intervention parameter, then the retraction that keeps each orthonormal projection R
/// orthonormal (Gram-Schmidt of its rows). R gets no weight decay by default: decay would pull it off the
/// manifold only for the retraction to push it back.
/// </summary>
/// <remarks>
/// A training step goes: <c>scalars.Begin(optimizer.Next(rate))</c>, the forward and backward passes,
/// <see cref="ClipGradients"/>, <see cref="Apply"/>, then <c>scalars.Read()</c>, the host's only wait. The update
/// and the retraction change nothing when the step's loss or gradient norm is not finite.
/// </remarks>
public sealed class AdamWOptimizer(double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool decayOrthonormal = false)
{
    /// <summary>Steps taken (the bias-correction counter); restored on resume.</summary>
    public int Steps { get; set; }

    /// <summary>Counts a step and returns its update with learning rate <paramref name="learningRate"/>.</summary>
    public AdamWStep Next(double learningRate)
    {
        Steps++;
        return new AdamWStep(learningRate, beta1, beta2, epsilon, weightDecay, Steps);
    }

    /// <summary>Queues the update of <paramref name="step"/>'s optimizer step: one batched call per op.</summary>
    public void Apply(InterventionSet set, StepScalars step)
    {
        ArgumentNullException.ThrowIfNull(set);
        var slots = set.Interventions.SelectMany(i => i.Slots()).ToList();
        if (slots.Count == 0)
        {
            return;
        }
        var backend = slots[0].Parameter.Backend;
        var targets = slots.Select(s => new AdamWTarget(s.Parameter, s.Gradient, s.M, s.V, Decay: !s.Orthonormal || decayOrthonormal)).ToList();
        backend.AdamW(targets, step);
        var orthonormal = slots.Where(s => s.Orthonormal).Select(s => s.Parameter).ToList();
        if (orthonormal.Count > 0)
        {
            backend.OrthonormalizeRows(orthonormal, step);
        }
    }

    /// <summary>
    /// Stores the gradients' global L2 norm in <paramref name="step"/> and scales them so it is at most
    /// <paramref name="maxNorm"/> (torch's clip_grad_norm_; 0 turns clipping off). A non-finite norm is left
    /// unclipped, for the step's reader to report.
    /// </summary>
    public static void ClipGradients(InterventionSet set, double maxNorm, StepScalars step)
    {
        ArgumentNullException.ThrowIfNull(set);
        var gradients = set.Interventions.SelectMany(i => i.Slots()).Select(s => s.Gradient).ToList();
        if (gradients.Count > 0)
        {
            gradients[0].Backend.ClipGradients(gradients, maxNorm, step);
        }
    }
}
