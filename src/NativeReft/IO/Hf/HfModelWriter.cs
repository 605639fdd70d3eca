using System.Text;
using System.Text.Json;
using NativeReft.IO.Safetensors;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.IO.Hf;

/// <summary>
/// Writes a LLaMA as an HF transformers directory that <see cref="HfModelLoader"/> and transformers'
/// <c>from_pretrained</c> both read: config.json, and model.safetensors or N shards
/// <c>model-0000k-of-0000N.safetensors</c> with <c>model.safetensors.index.json</c>. No tokenizer is written.
/// </summary>
public static class HfModelWriter
{
    /// <summary>
    /// Writes <paramref name="weights"/> (every weight of <see cref="WeightNames.Expected"/>, by canonical name,
    /// row-major) stored as <paramref name="dtype"/>, split over <paramref name="shards"/> files of about equal size.
    /// Weights files from an earlier save of the other layout are removed, so the loader cannot pick up stale ones.
    /// </summary>
    public static void Save(string directory, LlamaConfig config, IReadOnlyDictionary<string, float[]> weights,
        DType dtype, int shards = 1)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        config.Validate(directory);
        var expected = WeightNames.Expected(config).ToList();
        ArgumentOutOfRangeException.ThrowIfLessThan(shards, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(shards, expected.Count);
        foreach (string name in weights.Keys)
        {
            if (!expected.Exists(e => e.Name == name))
            {
                throw new ArgumentException($"'{name}' is not a weight of this config", nameof(weights));
            }
        }
        Directory.CreateDirectory(directory);

        int[] shardOf = AssignShards(expected.Select(e => Bytes(e.Shape, dtype)).ToList(), shards);
        var writers = Enumerable.Range(0, shards).Select(_ => new SafetensorsWriter()).ToArray();
        var weightMap = new SortedDictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < expected.Count; i++)
        {
            var (name, shape) = expected[i];
            if (!weights.TryGetValue(name, out var data))
            {
                throw new ArgumentException($"weight '{name}' is missing", nameof(weights));
            }
            writers[shardOf[i]].Add(name, shape, data, dtype); // checks the length against the shape
            weightMap[name] = ShardName(shardOf[i], shards);
        }

        string single = Path.Combine(directory, HfModelLoader.WeightsFile);
        string index = Path.Combine(directory, HfModelLoader.IndexFile);
        for (int k = 0; k < shards; k++)
        {
            writers[k].Metadata["format"] = "pt"; // transformers refuses safetensors files without it
            writers[k].Write(Path.Combine(directory, ShardName(k, shards)));
        }
        if (shards > 1)
        {
            WriteAtomically(index, IndexJson(writers.Sum(w => w.DataBytes), weightMap));
            File.Delete(single);
        }
        else
        {
            File.Delete(index);
        }
        WriteAtomically(Path.Combine(directory, HfConfig.FileName), HfConfig.ToJson(config, dtype));
    }

    /// <summary>The file name of shard <paramref name="k"/> (from 0) of <paramref name="count"/>, HF style.</summary>
    public static string ShardName(int k, int count) =>
        count == 1 ? HfModelLoader.WeightsFile : $"model-{k + 1:D5}-of-{count:D5}.safetensors";

    // Consecutive tensors fill a shard until it reaches its share of the bytes; every shard gets at least one.
    private static int[] AssignShards(List<long> bytes, int shards)
    {
        long target = (bytes.Sum() + shards - 1) / shards;
        var shardOf = new int[bytes.Count];
        int shard = 0;
        long inShard = 0;
        for (int i = 0; i < bytes.Count; i++)
        {
            int shardsAfter = shards - 1 - shard;
            if (inShard > 0 && shardsAfter > 0 && (inShard + bytes[i] > target || bytes.Count - i == shardsAfter))
            {
                shard++;
                inShard = 0;
            }
            shardOf[i] = shard;
            inShard += bytes[i];
        }
        return shardOf;
    }

    private static long Bytes(int[] shape, DType dtype) =>
        shape.Aggregate(1L, (n, d) => n * d) * DTypes.SizeOf(dtype);

    private static string IndexJson(long totalSize, SortedDictionary<string, string> weightMap)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", totalSize);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (name, shard) in weightMap)
            {
                json.WriteString(name, shard);
            }
            json.WriteEndObject();
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void WriteAtomically(string path, string text)
    {
        File.WriteAllText(path + ".tmp", text);
        File.Move(path + ".tmp", path, overwrite: true);
    }
}
