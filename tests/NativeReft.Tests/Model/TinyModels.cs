using NativeReft.Model;

namespace NativeReft.Tests.Model;

/// <summary>Small random LLaMA configs and weights (seeded) for model and loader tests.</summary>
internal static class TinyModels
{
    public static LlamaConfig Config(bool tied = true) => new()
    {
        Dim = 32, HiddenDim = 72, Layers = 2, Heads = 4, KvHeads = 2, VocabSize = 41, MaxSeqLen = 64,
        TiedEmbeddings = tied, NormEps = 1e-5f, RopeTheta = 10000,
    };

    public static (LlamaConfig Config, Dictionary<string, float[]> Weights) Random(int seed, bool tied = true) => (Config(tied), Weights(Config(tied), seed));

    public static Dictionary<string, float[]> Weights(LlamaConfig config, int seed)
    {
        var rng = new Random(seed);
        var weights = new Dictionary<string, float[]>();
        foreach (var (name, shape) in WeightNames.Expected(config))
        {
            int n = shape.Aggregate(1, (a, b) => a * b);
            // Norm weights near 1, matrices scaled like a trained model's so activations stay O(1).
            double scale = shape.Length == 1 ? 0.2 : 2.0 / Math.Sqrt(shape[^1]);
            double center = shape.Length == 1 ? 1 : 0;
            weights[name] = Enumerable.Range(0, n).Select(_ => (float)(center + (rng.NextDouble() - 0.5) * scale)).ToArray();
        }
        return weights;
    }
}
