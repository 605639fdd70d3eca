using NativeReft.Backends;
using NativeReft.Reft;

namespace NativeReft.Training;

/// <summary>
/// AdamW over every intervention parameter, then the retraction that keeps each orthonormal projection R
/// orthonormal (Gram-Schmidt of its rows). R gets no weight decay by default: decay would pull it off the
/// manifold only for the retraction to push it back.
/// </summary>
public sealed class AdamWOptimizer(double beta1 = 0.9, double beta2 = 0.999, double epsilon = 1e-8, double weightDecay = 0, bool decayOrthonormal = false)
{
    /// <summary>Steps taken (the bias-correction counter); restored on resume.</summary>
    public int Steps { get; set; }

    /// <summary>Applies one update with learning rate <paramref name="learningRate"/>: one batched call per op.</summary>
    public void Step(InterventionSet set, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(set);
        var slots = set.Interventions.SelectMany(i => i.Slots()).ToList();
        if (slots.Count == 0)
        {
            return;
        }
        Steps++;
        var backend = slots[0].Parameter.Backend;
        var targets = slots.Select(s => new AdamWTarget(s.Parameter, s.Gradient, s.M, s.V, Decay: !s.Orthonormal || decayOrthonormal)).ToList();
        backend.AdamW(targets, new AdamWStep(learningRate, beta1, beta2, epsilon, weightDecay, Steps));
        var orthonormal = slots.Where(s => s.Orthonormal).Select(s => s.Parameter).ToList();
        if (orthonormal.Count > 0)
        {
            backend.OrthonormalizeRows(orthonormal);
        }
    }

    /// <summary>
    /// Scales every gradient so their global L2 norm is at most <paramref name="maxNorm"/> (torch's
    /// clip_grad_norm_); returns the norm before clipping. A non-finite norm is returned unchanged, unclipped.
    /// </summary>
    public static double ClipGradients(InterventionSet set, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(set);
        var gradients = set.Interventions.SelectMany(i => i.Slots()).Select(s => s.Gradient).ToList();
        if (gradients.Count == 0)
        {
            return 0;
        }
        var backend = gradients[0].Backend;
        double norm = Math.Sqrt(backend.SumOfSquares(gradients));
        if (maxNorm > 0 && double.IsFinite(norm) && norm > maxNorm)
        {
            backend.Scale(gradients, maxNorm / (norm + 1e-6));
        }
        return norm;
    }
}
