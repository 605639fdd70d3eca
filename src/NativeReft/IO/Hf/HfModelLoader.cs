using System.Text.Json;
using NativeReft.IO.Safetensors;
using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.IO.Hf;

/// <summary>
/// Loads an HF transformers LLaMA directory: <c>config.json</c>, the weights as <c>model.safetensors</c> or as
/// shards listed by <c>model.safetensors.index.json</c> (memory-mapped, nothing copied), and the tokenizer from
/// <c>tokenizer.model</c> (SentencePiece) or else <c>tokenizer.json</c>, if either is there. Safetensors names of
/// HF LLaMA are already the canonical <see cref="WeightNames"/>; tensors the model does not use are ignored.
/// </summary>
public static class HfModelLoader
{
    /// <summary>The single-file weights.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The index of sharded weights.</summary>
    public const string IndexFile = "model.safetensors.index.json";

    /// <summary>A SentencePiece model (Llama 1/2).</summary>
    public const string SentencePieceFile = "tokenizer.model";

    /// <summary>An HF tokenizers file (Llama 3, and Llama 2 beside tokenizer.model).</summary>
    public const string TokenizerJsonFile = "tokenizer.json";

    /// <summary>True when <paramref name="path"/> is a directory holding a config.json (worth trying to load).</summary>
    public static bool IsModelDirectory(string path) =>
        Directory.Exists(path) && File.Exists(Path.Combine(path, HfConfig.FileName));

    /// <summary>Loads <paramref name="directory"/>; every problem is a <see cref="ModelFormatException"/> naming the file.</summary>
    public static Checkpoint Load(string directory)
    {
        if (!Directory.Exists(directory))
        {
            throw new ModelFormatException(directory, "directory not found");
        }
        var config = HfConfig.Load(Path.Combine(directory, HfConfig.FileName));
        var files = new List<SafetensorsFile>();
        try
        {
            var weights = LoadWeights(directory, config, files);
            var tokenizer = LoadTokenizer(directory, config);
            return new Checkpoint(directory, config, weights, [.. files.Select(f => f.Mapping)], tokenizer);
        }
        catch
        {
            foreach (var f in files)
            {
                f.Dispose();
            }
            throw;
        }
    }

    private static Dictionary<string, WeightTensor> LoadWeights(string directory, LlamaConfig config, List<SafetensorsFile> files)
    {
        string single = Path.Combine(directory, WeightsFile);
        string index = Path.Combine(directory, IndexFile);
        // Every tensor by name, from the one file or from the shard the index assigns it to.
        var all = new Dictionary<string, WeightTensor>(StringComparer.Ordinal);
        if (File.Exists(single))
        {
            var file = SafetensorsFile.Open(single);
            files.Add(file);
            foreach (var (name, tensor) in file.Tensors)
            {
                all[name] = tensor;
            }
        }
        else if (File.Exists(index))
        {
            var shards = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (name, shardName) in ReadWeightMap(index))
            {
                if (!shards.TryGetValue(shardName, out var shard))
                {
                    string shardPath = Path.Combine(directory, shardName);
                    if (!File.Exists(shardPath))
                    {
                        throw new ModelFormatException(shardPath, $"shard is missing ({IndexFile} lists it, for tensor '{name}')");
                    }
                    shard = SafetensorsFile.Open(shardPath);
                    shards[shardName] = shard;
                    files.Add(shard);
                }
                all[name] = shard.Tensors.TryGetValue(name, out var tensor) ? tensor : throw new ModelFormatException(
                    shard.Path, $"tensor '{name}' is not in this shard, though {IndexFile} says it is");
            }
        }
        else
        {
            throw new ModelFormatException(directory,
                $"no {WeightsFile} or {IndexFile} (only safetensors weights are supported, not pytorch_model.bin)");
        }
        // Only what the config needs; Checkpoint reports what is missing or misshapen.
        var weights = new Dictionary<string, WeightTensor>(StringComparer.Ordinal);
        foreach (var (name, _) in WeightNames.Expected(config))
        {
            if (all.TryGetValue(name, out var tensor))
            {
                weights[name] = tensor;
            }
        }
        return weights;
    }

    private static Dictionary<string, string> ReadWeightMap(string index)
    {
        using (var document = JsonKeys.ParseFile(index))
        {
            var map = new JsonKeys(document.RootElement, index).StringMap("weight_map")
                ?? throw new ModelFormatException(index, "missing required key 'weight_map'");
            foreach (var (name, shard) in map)
            {
                // A shard is a file beside the index: never a path that could leave the directory.
                if (shard.Length == 0 || Path.GetFileName(shard) != shard || shard is "." or "..")
                {
                    throw new ModelFormatException(index, $"weight_map sends '{name}' to '{shard}', which is not a file name in this directory");
                }
            }
            return map;
        }
    }

    private static ITokenizer? LoadTokenizer(string directory, LlamaConfig config)
    {
        string sentencePiece = Path.Combine(directory, SentencePieceFile);
        string json = Path.Combine(directory, TokenizerJsonFile);
        if (File.Exists(sentencePiece))
        {
            return SentencePieceModelTokenizer.Load(sentencePiece, config.BosId, config.EosId);
        }
        return File.Exists(json) ? HfTokenizer.Load(json, config.BosId, config.EosId) : null;
    }
}
