using NativeReft.Tensors;

namespace NativeReft.Reft;

/// <summary>
/// An intervention bound to the rows of one forward pass: which rows of the (batch * T, dim) residual stream it
/// edits, and the dropout scales to apply there (training only).
/// </summary>
/// <param name="Intervention">The intervention.</param>
/// <param name="Rows">Flattened row indices b * T + t, disjoint from every other intervention at the layer.</param>
/// <param name="DropoutScale">(Rows.Length, dim) of 0 or 1 / (1 - p), or null.</param>
public sealed record AppliedIntervention(Intervention Intervention, int[] Rows, Tensor? DropoutScale);

/// <summary>The interventions of one forward pass, by layer.</summary>
public sealed class InterventionPlan
{
    private readonly Dictionary<int, List<AppliedIntervention>> byLayer = [];

    /// <summary>The lowest layer with an intervention (the backward pass stops there), or -1.</summary>
    public int LowestLayer => byLayer.Count == 0 ? -1 : byLayer.Keys.Min();

    /// <summary>Adds an intervention at its layer; rows already taken at that layer are an error.</summary>
    public void Add(AppliedIntervention applied)
    {
        ArgumentNullException.ThrowIfNull(applied);
        if (applied.Rows.Length == 0)
        {
            return;
        }
        int layer = applied.Intervention.Layer;
        if (!byLayer.TryGetValue(layer, out var list))
        {
            byLayer[layer] = list = [];
        }
        foreach (var other in list)
        {
            if (other.Rows.Intersect(applied.Rows).Any())
            {
                throw new InputException(
                    $"interventions {other.Intervention.Name} and {applied.Intervention.Name} overlap at layer {layer}: interventions at one layer and position must be disjoint");
            }
        }
        list.Add(applied);
    }

    /// <summary>The interventions at <paramref name="layer"/> (empty when none).</summary>
    public IReadOnlyList<AppliedIntervention> At(int layer) => byLayer.TryGetValue(layer, out var list) ? list : [];
}
