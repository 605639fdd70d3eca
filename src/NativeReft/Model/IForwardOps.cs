using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>Where a forward op's output goes when buffers are reused (inference): one working tensor per slot.</summary>
internal enum Slot
{
    Norm,
    Q,
    K,
    V,
    Attention,
    Projected,
    Gate,
    Up,
}

/// <summary>
/// The ops of the decoder as the model code calls them, so one <see cref="LlamaModel"/> code path serves two
/// regimes: inference (<see cref="InferenceOps"/>: reused buffers, in-place residual, nothing recorded) and
/// training (<see cref="Training.Tape"/>: fresh tensors, and each op records what its backward needs).
/// </summary>
internal interface IForwardOps
{
    Backends.IBackend Backend { get; }

    /// <summary>The residual stream's working tensor (batch * T, dim) at the start of the forward.</summary>
    Tensor Input(int rows, int dim);

    Tensor RmsNorm(Tensor x, Tensor weight, float eps, Slot slot);

    Tensor MatMul(Tensor x, Tensor weight, Slot slot);

    void Rope(Tensor x, Tensor cos, Tensor sin, int[] positions, int heads);

    Tensor Attention(Tensor q, Tensor k, Tensor v, Backends.AttentionShape shape, bool[]? keyMask);

    Tensor SwiGlu(Tensor gate, Tensor up);

    /// <summary>(x + branch, rmsnorm(x + branch) * weight): a residual add fused with the norm after it; may overwrite x.</summary>
    (Tensor Sum, Tensor Norm) ResidualRmsNorm(Tensor x, Tensor branch, Tensor weight, float eps, Slot slot);

    /// <summary>x + input weight^T: a Linear layer and the residual add after it, in one op; may overwrite x.</summary>
    Tensor ResidualLinear(Tensor x, Tensor input, Tensor weight);

    /// <summary>
    /// The forward pass will not read <paramref name="t"/> again: a recorder frees it unless a backward needs its
    /// values (a Linear layer's input is not needed: its input gradient reads only the weight).
    /// </summary>
    void Done(Tensor t);

    /// <summary>x with the rows of each intervention replaced by its edit; may overwrite x.</summary>
    Tensor Intervene(Tensor x, IReadOnlyList<Reft.AppliedIntervention> interventions);
}
