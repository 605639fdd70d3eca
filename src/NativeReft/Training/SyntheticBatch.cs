namespace NativeReft.Training;

/// <summary>
/// The benchmark workload (<c>nativereft bench train</c>, and bench/peers for the PyTorch side): <c>batch</c>
/// sequences of <c>length</c> random tokens, the first half of each the prompt (intervened on), the second half the
/// response (labelled). No data file, no tokenizer.
/// </summary>
public static class SyntheticBatch
{
    /// <summary>The batch for <paramref name="vocabulary"/>, tokens drawn from [3, vocabulary) with <paramref name="seed"/>.</summary>
    public static ReftBatch Create(int batch, int length, int vocabulary, int seed = 1)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        ArgumentOutOfRangeException.ThrowIfLessThan(length, 2);
        ArgumentOutOfRangeException.ThrowIfLessThan(vocabulary, 4);
        var rng = new Random(seed);
        var examples = new List<ReftExample>(batch);
        for (int b = 0; b < batch; b++)
        {
            int[] tokens = new int[length];
            tokens[0] = 1; // BOS
            for (int t = 1; t < length; t++)
            {
                tokens[t] = rng.Next(3, vocabulary);
            }
            examples.Add(new ReftExample(tokens, PromptLength: length / 2, Line: b + 1));
        }
        return new ReftBatch(examples);
    }
}
