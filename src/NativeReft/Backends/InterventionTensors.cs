using NativeReft.Tensors;

namespace NativeReft.Backends;

/// <summary>
/// The tensors of one intervention in the unified form every pyreft type fits:
/// Phi(h) = h + P^T (s - [SubtractProjection] P h), s = act(W h + b) when W is present, else s = b.
/// LoReFT: P = R (orthonormal rows), W, subtract. NoReFT: P = W2, W = W1, subtract. DiReFT (NodireftIntervention):
/// P = W2, W = W1. DireftIntervention: P = R, W. ConsReFT: P = R, no W, subtract. LobiReFT: P = R, no W.
/// The same record carries the gradients (same shapes).
/// </summary>
/// <param name="P">(r, d) the projection (R or W2).</param>
/// <param name="W">(r, d) the learned source's weight, or null when the source is the constant b.</param>
/// <param name="B">(r) the learned source's bias (or the constant source).</param>
/// <param name="SubtractProjection">Whether P h is subtracted from the source (LoReFT, NoReFT, ConsReFT).</param>
/// <param name="Activation">Applied to W h + b.</param>
public sealed record InterventionTensors(Tensor P, Tensor? W, Tensor B, bool SubtractProjection, Activation Activation)
{
    /// <summary>Rank r.</summary>
    public int Rank => P.Rows;

    /// <summary>Model width d.</summary>
    public int Dim => P.Columns;
}

/// <summary>Activation on the learned source (pyreft's <c>act_fn</c>).</summary>
public enum Activation
{
    /// <summary>None (pyreft's default, "linear").</summary>
    Linear,
    /// <summary>max(0, x).</summary>
    Relu,
    /// <summary>x * sigmoid(x).</summary>
    Silu,
    /// <summary>tanh(x).</summary>
    Tanh,
}

/// <summary>AdamW hyper-parameters of one optimizer step.</summary>
/// <param name="LearningRate">This step's learning rate (after the schedule).</param>
/// <param name="Beta1">First-moment decay.</param>
/// <param name="Beta2">Second-moment decay.</param>
/// <param name="Epsilon">Denominator guard.</param>
/// <param name="WeightDecay">Decoupled weight decay (multiplied by the learning rate).</param>
/// <param name="Step">1-based step number for bias correction.</param>
public readonly record struct AdamWStep(double LearningRate, double Beta1, double Beta2, double Epsilon, double WeightDecay, int Step);
