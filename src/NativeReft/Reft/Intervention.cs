using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Reft;

/// <summary>
/// One trainable Phi at one layer (and one side when untied): its parameters, their gradients and AdamW moments,
/// all on the model's backend. Memory is O(r d): R is never expanded to a d x d parametrization.
/// </summary>
public sealed class Intervention : IDisposable
{
    internal Intervention(IBackend backend, InterventionType type, int layer, string side, int rank, int dim, Activation activation,
        Func<string, int[], Tensor> create)
    {
        Type = type;
        Layer = layer;
        Side = side;
        Tensor Make(string part, params int[] shape) => create($"{Name}.{part}", shape);
        Parameters = new InterventionTensors(Make("P", rank, dim), type.HasLearnedSource() ? Make("W", rank, dim) : null,
            Make("b", rank), type.SubtractsProjection(), activation);
        Gradients = Parameters with { P = backend.ZerosFp32(rank, dim), W = Parameters.W is null ? null : backend.ZerosFp32(rank, dim), B = backend.ZerosFp32(rank) };
        FirstMoments = Parameters with { P = backend.ZerosFp32(rank, dim), W = Parameters.W is null ? null : backend.ZerosFp32(rank, dim), B = backend.ZerosFp32(rank) };
        SecondMoments = Parameters with { P = backend.ZerosFp32(rank, dim), W = Parameters.W is null ? null : backend.ZerosFp32(rank, dim), B = backend.ZerosFp32(rank) };
    }

    /// <summary>The function.</summary>
    public InterventionType Type { get; }

    /// <summary>The layer whose output it edits.</summary>
    public int Layer { get; }

    /// <summary>"all" (tied), "first" or "last".</summary>
    public string Side { get; }

    /// <summary>Name used in artifacts, e.g. "layer3.all".</summary>
    public string Name => $"layer{Layer}.{Side}";

    /// <summary>P, W, b.</summary>
    public InterventionTensors Parameters { get; }

    /// <summary>Their gradients (accumulated over a step).</summary>
    public InterventionTensors Gradients { get; }

    /// <summary>AdamW first moments.</summary>
    public InterventionTensors FirstMoments { get; }

    /// <summary>AdamW second moments.</summary>
    public InterventionTensors SecondMoments { get; }

    /// <summary>(name, tensor) of each parameter with its gradient and moments, for the optimizer and artifacts.</summary>
    public IEnumerable<(string Name, Tensor Parameter, Tensor Gradient, Tensor M, Tensor V, bool Orthonormal)> Slots()
    {
        yield return ($"{Name}.P", Parameters.P, Gradients.P, FirstMoments.P, SecondMoments.P, Type.HasOrthonormalProjection());
        if (Parameters.W is not null)
        {
            yield return ($"{Name}.W", Parameters.W, Gradients.W!, FirstMoments.W!, SecondMoments.W!, false);
        }
        yield return ($"{Name}.b", Parameters.B, Gradients.B, FirstMoments.B, SecondMoments.B, false);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var slot in Slots())
        {
            slot.Parameter.Dispose();
            slot.Gradient.Dispose();
            slot.M.Dispose();
            slot.V.Dispose();
        }
    }
}
