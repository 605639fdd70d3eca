using NativeReft.Reft;

namespace NativeReft.Training;

/// <summary>
/// Examples collated for one forward pass: right-padded tokens (batch, T) with a mask, the intervention rows of
/// each example's prompt, and the labelled rows (position t predicts token t + 1 of the response or EOS).
/// </summary>
public sealed class ReftBatch
{
    /// <summary>Collates <paramref name="examples"/>.</summary>
    public ReftBatch(IReadOnlyList<ReftExample> examples)
    {
        ArgumentNullException.ThrowIfNull(examples);
        Examples = examples;
        Size = examples.Count;
        Length = examples.Max(e => e.Tokens.Length);
        Tokens = new int[Size * Length];
        Mask = new bool[Size * Length];
        Positions = new int[Size * Length];
        var rows = new List<int>();
        var targets = new List<int>();
        for (int b = 0; b < Size; b++)
        {
            var e = examples[b];
            for (int t = 0; t < e.Tokens.Length; t++)
            {
                Tokens[b * Length + t] = e.Tokens[t];
                Mask[b * Length + t] = true;
                Positions[b * Length + t] = t;
                if (t + 1 >= e.PromptLength && t + 1 < e.Tokens.Length)
                {
                    rows.Add(b * Length + t);
                    targets.Add(e.Tokens[t + 1]);
                }
            }
        }
        LabelledRows = [.. rows];
        Targets = [.. targets];
    }

    /// <summary>The examples, in batch order.</summary>
    public IReadOnlyList<ReftExample> Examples { get; }

    /// <summary>Sequences.</summary>
    public int Size { get; }

    /// <summary>Padded length T.</summary>
    public int Length { get; }

    /// <summary>(Size * Length) token ids, padding 0.</summary>
    public int[] Tokens { get; }

    /// <summary>(Size * Length) true for real tokens.</summary>
    public bool[] Mask { get; }

    /// <summary>(Size * Length) RoPE positions (0 on padding).</summary>
    public int[] Positions { get; }

    /// <summary>Rows whose next token is labelled.</summary>
    public int[] LabelledRows { get; }

    /// <summary>The label of each labelled row.</summary>
    public int[] Targets { get; }

    /// <summary>Tokens in the batch, padding excluded.</summary>
    public int RealTokens => Examples.Sum(e => e.Tokens.Length);

    /// <summary>Rows each intervention of <paramref name="set"/> edits: every example's prompt positions for its side.</summary>
    public int[] InterventionRows(InterventionSet set, Intervention intervention)
    {
        ArgumentNullException.ThrowIfNull(set);
        ArgumentNullException.ThrowIfNull(intervention);
        var rows = new List<int>();
        for (int b = 0; b < Size; b++)
        {
            foreach (int p in set.Config.PositionsOf(intervention.Side, Examples[b].PromptLength))
            {
                rows.Add(b * Length + p);
            }
        }
        return [.. rows];
    }
}
