using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Bench;

/// <summary>
/// The models benchmarks run: shapes from the engine's registry (<see cref="ModelShapes"/>, never hard-coded in a
/// benchmark) with seeded random weights, or the real stories260K checkpoint when ../shared is beside the project.
/// </summary>
public static class BenchModels
{
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
        var config = ModelShapes.ByName(shape);
        return LlamaModel.FromWeights(config, RandomWeights(config), backend);
    }
}

/// <summary>
/// A model, a LoReFT of <c>rank</c> at every layer (positions f7+l7) and a fixed-batch training step over them,
/// disposed together: what the training benchmarks time.
/// </summary>
public sealed class BenchStep : IDisposable
{
    public BenchStep(LlamaModel model, int rank, Func<LlamaConfig, ReftBatch> batch)
    {
        Model = model;
        var reft = new ReftConfig { Rank = rank, Layers = [.. Enumerable.Range(0, model.Config.Layers)], Positions = new PositionSpec(7, 7) };
        Set = InterventionSet.Create(reft, model, seed: 1);
        Step = new FixedBatchStep(model, Set, batch(model.Config));
    }

    public LlamaModel Model { get; }

    public InterventionSet Set { get; }

    public FixedBatchStep Step { get; }

    public void Dispose()
    {
        Step.Dispose();
        Set.Dispose();
        Model.Dispose();
    }
}
