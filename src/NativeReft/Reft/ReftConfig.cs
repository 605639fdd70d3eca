using NativeReft.Backends;

namespace NativeReft.Reft;

/// <summary>
/// What a set of interventions is: its type, rank, layers and positions. Saved beside the weights as JSON so an
/// artifact says how to apply itself, and to which base model (<see cref="BaseModel"/>).
/// </summary>
public sealed record ReftConfig
{
    /// <summary>The intervention function.</summary>
    public InterventionType Type { get; init; } = InterventionType.LoReft;

    /// <summary>Rank r of the subspace.</summary>
    public int Rank { get; init; } = 4;

    /// <summary>Layers whose output (pyreft's block_output) is edited, ascending.</summary>
    public int[] Layers { get; init; } = [];

    /// <summary>Which prompt positions are edited.</summary>
    public PositionSpec Positions { get; init; } = new(7, 7);

    /// <summary>One intervention per layer for all positions (true), or one for the first and one for the last positions.</summary>
    public bool Tied { get; init; } = true;

    /// <summary>Activation on the learned source.</summary>
    public Activation Activation { get; init; } = Activation.Linear;

    /// <summary>Dropout probability on the edited state (training only).</summary>
    public double Dropout { get; init; }

    /// <summary>Model width d.</summary>
    public int Dim { get; init; }

    /// <summary>Fingerprint of the base model the interventions were trained on.</summary>
    public string BaseModel { get; init; } = "";

    /// <summary>Throws an <see cref="InputException"/> if the settings cannot work on a model of width <paramref name="dim"/>.</summary>
    public void Validate(int dim, int layerCount)
    {
        if (Rank <= 0 || Rank > dim)
        {
            throw new InputException($"rank {Rank} is invalid: it must be between 1 and the model dimension ({dim})");
        }
        if (Layers.Length == 0)
        {
            throw new InputException("no layers to intervene on");
        }
        if (Layers.Any(l => l < 0 || l >= layerCount) || Layers.Distinct().Count() != Layers.Length)
        {
            throw new InputException($"layers {string.Join(";", Layers)} are invalid for a model with layers 0..{layerCount - 1} (each at most once)");
        }
        if (!(Dropout >= 0 && Dropout < 1))
        {
            throw new InputException($"dropout {Dropout} must be in [0, 1)");
        }
    }

    /// <summary>The interventions of one layer: ("all", first + last) when tied, else ("first") and ("last").</summary>
    public IEnumerable<string> Sides()
    {
        if (Tied)
        {
            yield return "all";
            yield break;
        }
        if (Positions.First > 0)
        {
            yield return "first";
        }
        if (Positions.Last > 0)
        {
            yield return "last";
        }
    }

    /// <summary>The prompt positions a side edits, for a prompt of <paramref name="promptLength"/> tokens.</summary>
    public int[] PositionsOf(string side, int promptLength) => side switch
    {
        "all" => [.. Positions.FirstPositions(promptLength), .. Positions.LastPositions(promptLength)],
        "first" => Positions.FirstPositions(promptLength),
        "last" => Positions.LastPositions(promptLength),
        _ => throw new ArgumentOutOfRangeException(nameof(side), side, null),
    };
}
