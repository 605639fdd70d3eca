namespace NativeReft.Generation;

/// <summary>
/// Picks the next token from logits as llama2.c does: argmax at temperature 0, else softmax(logits / T) sampled
/// directly or, with 0 &lt; topP &lt; 1, from the smallest set of tokens whose probability reaches topP (nucleus).
/// Its random numbers come from llama2.c's xorshift generator, so a seed reproduces a run.
/// </summary>
public sealed class Sampler
{
    private readonly float temperature;
    private readonly float topP;
    private ulong state;

    /// <summary>Creates a sampler; the seed must not be 0 (xorshift's fixed point), so 0 is mapped to 1.</summary>
    public Sampler(float temperature, float topP, ulong seed)
    {
        if (!(temperature >= 0) || !float.IsFinite(temperature))
        {
            throw new ArgumentOutOfRangeException(nameof(temperature), temperature, "temperature must be a finite number >= 0");
        }
        if (!(topP > 0 && topP <= 1))
        {
            throw new ArgumentOutOfRangeException(nameof(topP), topP, "top-p must be in (0, 1]");
        }
        this.temperature = temperature;
        this.topP = topP;
        state = seed == 0 ? 1 : seed;
    }

    /// <summary>Chooses a token id from <paramref name="logits"/> (modified in place when sampling).</summary>
    public int Sample(Span<float> logits)
    {
        if (temperature == 0)
        {
            return System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
        }
        System.Numerics.Tensors.TensorPrimitives.Divide(logits, temperature, logits);
        System.Numerics.Tensors.TensorPrimitives.SoftMax(logits, logits);
        float coin = NextFloat();
        return topP >= 1 ? SampleMultinomial(logits, coin) : SampleTopP(logits, coin);
    }

    private static int SampleMultinomial(ReadOnlySpan<float> probabilities, float coin)
    {
        float cdf = 0;
        for (int i = 0; i < probabilities.Length; i++)
        {
            cdf += probabilities[i];
            if (coin < cdf)
            {
                return i;
            }
        }
        return probabilities.Length - 1; // rounding left the cdf just below 1
    }

    private int SampleTopP(ReadOnlySpan<float> probabilities, float coin)
    {
        // Tokens below (1 - topP) / (n - 1) cannot be in the nucleus: dropping them first keeps the sort small.
        float cutoff = (1 - topP) / (probabilities.Length - 1);
        var candidates = new List<(float P, int Id)>();
        for (int i = 0; i < probabilities.Length; i++)
        {
            if (probabilities[i] >= cutoff)
            {
                candidates.Add((probabilities[i], i));
            }
        }
        candidates.Sort((a, b) => b.P.CompareTo(a.P));
        float cumulative = 0;
        int last = candidates.Count - 1;
        for (int i = 0; i < candidates.Count; i++)
        {
            cumulative += candidates[i].P;
            if (cumulative > topP)
            {
                last = i;
                break;
            }
        }
        float r = coin * cumulative;
        float cdf = 0;
        for (int i = 0; i <= last; i++)
        {
            cdf += candidates[i].P;
            if (r < cdf)
            {
                return candidates[i].Id;
            }
        }
        return candidates[last].Id;
    }

    private float NextFloat()
    {
        // llama2.c's random_u32 (xorshift*) and random_f32: 24 random bits in [0, 1).
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        uint bits = (uint)((state * 0x2545F4914F6CDD1DUL) >> 32);
        return (bits >> 8) / 16777216.0f;
    }
}
