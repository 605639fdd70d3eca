using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.Model;

namespace NativeReft.Bench;

/// <summary>
/// The model-shape registry benchmarks take their sizes from (never hard-coded in a benchmark), plus the real
/// stories260K checkpoint when ../shared is beside the project.
/// </summary>
public static class ModelShapes
{
    /// <summary>llama2.c's stories15M shape: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, 256 positions.</summary>
    public static LlamaConfig Llama2c15M { get; } = new()
    {
        Dim = 288, HiddenDim = 768, Layers = 6, Heads = 6, KvHeads = 6, VocabSize = 32000, MaxSeqLen = 256,
    };

    /// <summary>The stories260K shape (the real weights are used where present).</summary>
    public static LlamaConfig Stories260K { get; } = new()
    {
        Dim = 64, HiddenDim = 172, Layers = 5, Heads = 8, KvHeads = 4, VocabSize = 512, MaxSeqLen = 512,
    };

    /// <summary>Shapes by the names benchmarks use in [Params].</summary>
    public static LlamaConfig ByName(string name) => name switch
    {
        "llama2c-15M" => Llama2c15M,
        "stories260K" => Stories260K,
        _ => throw new ArgumentException($"unknown model shape '{name}'", nameof(name)),
    };

    /// <summary>Seeded random weights of a shape, scaled like a trained model's.</summary>
    public static Dictionary<string, float[]> RandomWeights(LlamaConfig config, int seed = 1234)
    {
        var rng = new Random(seed);
        var weights = new Dictionary<string, float[]>();
        foreach (var (name, shape) in WeightNames.Expected(config))
        {
            var w = new float[shape.Aggregate(1L, (a, b) => a * b)];
            float scale = shape.Length == 1 ? 0f : 1f / MathF.Sqrt(shape[^1]);
            for (int i = 0; i < w.Length; i++)
            {
                w[i] = shape.Length == 1 ? 1f : (float)(rng.NextDouble() * 2 - 1) * scale;
            }
            weights[name] = w;
        }
        return weights;
    }

    /// <summary>The stories260K checkpoint in ../shared, searched upward from the working directory, or null.</summary>
    public static string? FindStories260K()
    {
        for (var dir = new DirectoryInfo(Environment.CurrentDirectory); dir is not null; dir = dir.Parent)
        {
            string path = Path.Combine(dir.FullName, "shared", "data", "stories260K", "stories260K.bin");
            if (File.Exists(path))
            {
                return path;
            }
        }
        return null;
    }

    /// <summary>The model a benchmark runs: stories260K's real weights when ../shared has them, else seeded random weights of the shape.</summary>
    public static LlamaModel Load(string shape, IBackend backend)
    {
        string? real = shape == "stories260K" ? FindStories260K() : null;
        if (real is not null)
        {
            using var checkpoint = Llama2cLoader.Load(real);
            return LlamaModel.Load(checkpoint, backend);
        }
        var config = ByName(shape);
        return LlamaModel.FromWeights(config, RandomWeights(config), backend);
    }
}
