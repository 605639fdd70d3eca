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

    /// <summary>Applies one update with learning rate <paramref name="learningRate"/>.</summary>
    public void Step(InterventionSet set, double learningRate)
    {
        ArgumentNullException.ThrowIfNull(set);
        Steps++;
        foreach (var slot in set.Interventions.SelectMany(i => i.Slots()))
        {
            var backend = slot.Parameter.Backend;
            double decay = slot.Orthonormal && !decayOrthonormal ? 0 : weightDecay;
            backend.AdamW(slot.Parameter, slot.Gradient, slot.M, slot.V, new AdamWStep(learningRate, beta1, beta2, epsilon, decay, Steps));
            if (slot.Orthonormal)
            {
                backend.OrthonormalizeRows(slot.Parameter);
            }
        }
    }

    /// <summary>
    /// Scales every gradient so their global L2 norm is at most <paramref name="maxNorm"/> (torch's
    /// clip_grad_norm_); returns the norm before clipping. A non-finite norm is returned unchanged, unclipped.
    /// </summary>
    public static double ClipGradients(InterventionSet set, double maxNorm)
    {
        ArgumentNullException.ThrowIfNull(set);
        double sumOfSquares = set.Interventions.SelectMany(i => i.Slots()).Sum(s => s.Gradient.Backend.SumOfSquares(s.Gradient));
        double norm = Math.Sqrt(sumOfSquares);
        if (maxNorm > 0 && double.IsFinite(norm) && norm > maxNorm)
        {
            double factor = maxNorm / (norm + 1e-6);
            foreach (var slot in set.Interventions.SelectMany(i => i.Slots()))
            {
                slot.Gradient.Backend.Scale(slot.Gradient, factor);
            }
        }
        return norm;
    }
}
