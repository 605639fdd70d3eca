using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.IO.Safetensors;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.Reft;

/// <summary>
/// All interventions of one <see cref="ReftConfig"/> on a model: one per layer (tied) or two (first and last
/// positions). Saved as one safetensors file whose metadata carries the config, so a save is one atomic rename.
/// </summary>
public sealed class InterventionSet : IDisposable
{
    /// <summary>The artifact's weights (with the config in its metadata).</summary>
    public const string WeightsFile = "intervention.safetensors";

    /// <summary>A readable copy of the config beside the weights.</summary>
    public const string ConfigFile = "intervention.json";

    private const string ConfigMetadataKey = "reft_config";

    private InterventionSet(ReftConfig config, IReadOnlyList<Intervention> interventions)
    {
        Config = config;
        Interventions = interventions;
    }

    /// <summary>What the interventions are.</summary>
    public ReftConfig Config { get; }

    /// <summary>Every intervention, by layer then side.</summary>
    public IReadOnlyList<Intervention> Interventions { get; }

    /// <summary>
    /// New interventions for <paramref name="model"/>, initialised as pyreft does: orthonormal R (random rows, then
    /// Gram-Schmidt), Linear-style uniform(-1/sqrt(d), 1/sqrt(d)) for W2, W and b, uniform(0, 1) for the constant
    /// source b of ConsReFT and LobiReFT. The seed makes it reproducible.
    /// </summary>
    public static InterventionSet Create(ReftConfig config, LlamaModel model, int seed)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(model);
        config = config with { Dim = model.Config.Dim, BaseModel = model.Fingerprint };
        config.Validate(model.Config.Dim, model.Config.Layers);
        var backend = model.Backend;
        var rng = new Random(seed);
        double bound = 1 / Math.Sqrt(config.Dim);
        Tensor Init(string name, int[] shape)
        {
            var data = new float[shape.Aggregate(1, (a, b) => a * b)];
            bool constantSource = name.EndsWith(".b", StringComparison.Ordinal) && !config.Type.HasLearnedSource();
            bool orthonormal = name.EndsWith(".P", StringComparison.Ordinal) && config.Type.HasOrthonormalProjection();
            for (int i = 0; i < data.Length; i++)
            {
                data[i] = orthonormal ? (float)Gaussian(rng)
                    : constantSource ? (float)rng.NextDouble()
                    : (float)((rng.NextDouble() * 2 - 1) * bound);
            }
            var tensor = backend.UploadFp32(data, shape);
            if (orthonormal)
            {
                backend.OrthonormalizeRows(tensor);
            }
            return tensor;
        }
        return new InterventionSet(config, Build(config, backend, Init));
    }

    /// <summary>Loads an artifact directory (or its safetensors file) for <paramref name="model"/>.</summary>
    public static InterventionSet Load(string path, LlamaModel model)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(model);
        string file = Directory.Exists(path) ? System.IO.Path.Combine(path, WeightsFile) : path;
        if (!File.Exists(file))
        {
            throw new ModelFormatException(file, $"intervention artifact not found (expected {WeightsFile} in the directory given)");
        }
        using var weights = SafetensorsFile.Open(file);
        if (!weights.Metadata.TryGetValue(ConfigMetadataKey, out string? json))
        {
            throw new ModelFormatException(file, $"not a NativeReft intervention: its metadata has no '{ConfigMetadataKey}'");
        }
        var config = ReftConfigJson.Read(json, file);
        if (config.BaseModel != model.Fingerprint || config.Dim != model.Config.Dim)
        {
            throw new InputException(
                $"{file} was trained on another base model (fingerprint {config.BaseModel}, dim {config.Dim}); this model is {model.Fingerprint} (dim {model.Config.Dim}). Use the model it was trained on.");
        }
        config.Validate(model.Config.Dim, model.Config.Layers);
        return new InterventionSet(config, Build(config, model.Backend, (name, shape) =>
        {
            if (!weights.Tensors.TryGetValue(name, out var w))
            {
                throw new ModelFormatException(file, $"missing tensor '{name}'");
            }
            if (!w.Shape.AsSpan().SequenceEqual(shape))
            {
                throw new ModelFormatException(file, $"tensor '{name}' has shape {w.ShapeText}, the config needs ({string.Join(", ", shape)})");
            }
            return model.Backend.UploadFp32(w.ReadAll(), shape);
        }));
    }

    /// <summary>
    /// Writes the artifact into <paramref name="directory"/>: the weights (config in the metadata) through a
    /// temporary file and a rename, then the readable config copy. An interrupted save never leaves a partial
    /// file under the final names.
    /// </summary>
    public void Save(string directory)
    {
        Directory.CreateDirectory(directory);
        WriteFile(System.IO.Path.Combine(directory, WeightsFile), metadata: null, withMoments: false);
        AtomicFile.WriteAllText(System.IO.Path.Combine(directory, ConfigFile), ReftConfigJson.Write(Config));
    }

    /// <summary>
    /// Writes the parameters (and, for a training checkpoint, the AdamW moments as "name.m" / "name.v") to one
    /// safetensors file, atomically, with the config and <paramref name="metadata"/> in its header.
    /// </summary>
    internal void WriteFile(string file, IReadOnlyDictionary<string, string>? metadata, bool withMoments)
    {
        var writer = new SafetensorsWriter();
        writer.Metadata[ConfigMetadataKey] = ReftConfigJson.Write(Config);
        foreach (var (key, value) in metadata ?? new Dictionary<string, string>())
        {
            writer.Metadata[key] = value;
        }
        var backend = Interventions[0].Parameters.P.Backend;
        foreach (var slot in Interventions.SelectMany(i => i.Slots()))
        {
            int[] shape = slot.Parameter.Shape.ToArray();
            writer.Add(slot.Name, shape, Download(backend, slot.Parameter));
            if (withMoments)
            {
                writer.Add(slot.Name + ".m", shape, Download(backend, slot.M));
                writer.Add(slot.Name + ".v", shape, Download(backend, slot.V));
            }
        }
        writer.Write(file);
    }

    /// <summary>Restores the AdamW moments saved by <see cref="WriteFile"/> from <paramref name="file"/>.</summary>
    internal void ReadMoments(SafetensorsFile file)
    {
        foreach (var slot in Interventions.SelectMany(i => i.Slots()))
        {
            foreach (var (suffix, target) in new[] { (".m", slot.M), (".v", slot.V) })
            {
                if (!file.Tensors.TryGetValue(slot.Name + suffix, out var saved))
                {
                    throw new ModelFormatException(file.Path, $"missing optimizer state '{slot.Name + suffix}': not a training checkpoint");
                }
                var values = saved.ReadAll();
                using var uploaded = target.Backend.UploadFp32(values, target.Shape.ToArray());
                target.Backend.Copy(uploaded, target);
            }
        }
    }

    /// <summary>Zeroes every gradient (the start of an optimizer step).</summary>
    public void ZeroGradients()
    {
        var gradients = Interventions.SelectMany(i => i.Slots()).Select(s => s.Gradient).ToList();
        if (gradients.Count > 0)
        {
            gradients[0].Backend.Scale(gradients, 0);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var i in Interventions)
        {
            i.Dispose();
        }
    }

    internal static float[] Download(IBackend backend, Tensor t)
    {
        var data = new float[t.Length];
        backend.Download(t, data);
        return data;
    }

    private static List<Intervention> Build(ReftConfig config, IBackend backend, Func<string, int[], Tensor> create) =>
        [.. config.Layers.SelectMany(layer => config.Sides().Select(side =>
            new Intervention(backend, config.Type, layer, side, config.Rank, config.Dim, config.Activation, create)))];

    private static double Gaussian(Random rng) =>
        Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
}
