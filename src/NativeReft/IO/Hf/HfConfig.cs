using System.Text;
using System.Text.Json;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.IO.Hf;

/// <summary>
/// HF transformers' <c>config.json</c> for <c>LlamaForCausalLM</c>, read into and written from
/// <see cref="LlamaConfig"/>. Optional keys take transformers' <c>LlamaConfig</c> defaults (rms_norm_eps 1e-6,
/// rope_theta 10000, untied embeddings, BOS 1, EOS 2, 2048 positions), not ours.
/// </summary>
public static class HfConfig
{
    /// <summary>The file's name in an HF model directory.</summary>
    public const string FileName = "config.json";

    /// <summary>Reads and validates <paramref name="path"/>; every problem is a <see cref="ModelFormatException"/>.</summary>
    public static LlamaConfig Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, $"file not found (an HF model directory needs {FileName})");
        }
        return Parse(File.ReadAllText(path), path);
    }

    /// <summary>Parses config.json text; <paramref name="source"/> names it in errors.</summary>
    public static LlamaConfig Parse(string json, string source)
    {
        using (var document = JsonKeys.Parse(Encoding.UTF8.GetBytes(json), source))
        {
            var keys = new JsonKeys(document.RootElement, source);
            CheckArchitecture(keys, source);
            int heads = keys.RequiredInt("num_attention_heads");
            var config = new LlamaConfig
            {
                Dim = keys.RequiredInt("hidden_size"),
                HiddenDim = keys.RequiredInt("intermediate_size"),
                Layers = keys.RequiredInt("num_hidden_layers"),
                Heads = heads,
                KvHeads = keys.Int("num_key_value_heads") ?? heads,
                VocabSize = keys.RequiredInt("vocab_size"),
                HeadDim = keys.Int("head_dim") ?? 0,
                MaxSeqLen = keys.Int("max_position_embeddings") ?? 2048,
                NormEps = (float)(keys.Double("rms_norm_eps") ?? 1e-6),
                RopeTheta = keys.Double("rope_theta") ?? 10000,
                RopeScaling = ReadRopeScaling(keys),
                TiedEmbeddings = keys.Bool("tie_word_embeddings") ?? false,
                BosId = keys.Int("bos_token_id") ?? 1,
                EosId = keys.FirstInt("eos_token_id") ?? 2,
            };
            config.Validate(source);
            return config;
        }
    }

    /// <summary>
    /// A standard HF config.json for <paramref name="config"/> (model_type llama, LlamaForCausalLM) whose weights
    /// are stored as <paramref name="torchDtype"/>.
    /// </summary>
    public static string ToJson(LlamaConfig config, DType torchDtype = DType.F32)
    {
        ArgumentNullException.ThrowIfNull(config);
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartArray("architectures");
            json.WriteStringValue("LlamaForCausalLM");
            json.WriteEndArray();
            json.WriteString("model_type", "llama");
            json.WriteString("torch_dtype", TorchDtypeName(torchDtype));
            json.WriteNumber("hidden_size", config.Dim);
            json.WriteNumber("intermediate_size", config.HiddenDim);
            json.WriteNumber("num_hidden_layers", config.Layers);
            json.WriteNumber("num_attention_heads", config.Heads);
            json.WriteNumber("num_key_value_heads", config.KvHeads);
            if (config.HeadDim > 0)
            {
                json.WriteNumber("head_dim", config.HeadDim);
            }
            json.WriteNumber("vocab_size", config.VocabSize);
            json.WriteNumber("max_position_embeddings", config.MaxSeqLen);
            json.WriteNumber("rms_norm_eps", config.NormEps); // float overload: shortest text that reads back exactly
            json.WriteNumber("rope_theta", config.RopeTheta);
            WriteRopeScaling(json, config.RopeScaling);
            json.WriteBoolean("tie_word_embeddings", config.TiedEmbeddings);
            json.WriteNumber("bos_token_id", config.BosId);
            json.WriteNumber("eos_token_id", config.EosId);
            json.WriteString("hidden_act", "silu");
            json.WriteBoolean("attention_bias", false);
            json.WriteBoolean("mlp_bias", false);
            json.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static void CheckArchitecture(JsonKeys keys, string source)
    {
        string? modelType = keys.String("model_type");
        string[] architectures = keys.Strings("architectures");
        if (modelType != "llama" && !architectures.Contains("LlamaForCausalLM"))
        {
            string found = modelType ?? architectures.FirstOrDefault() ?? "none given";
            throw new ModelFormatException(source, $"unsupported architecture '{found}' (supported: llama / LlamaForCausalLM)");
        }
        // Options the model code does not implement would otherwise be ignored silently and give wrong outputs.
        string activation = keys.String("hidden_act") ?? "silu";
        if (activation != "silu")
        {
            throw new ModelFormatException(source, $"hidden_act '{activation}' is not supported (supported: silu)");
        }
        if (keys.Bool("attention_bias") == true || keys.Bool("mlp_bias") == true)
        {
            throw new ModelFormatException(source, "attention_bias / mlp_bias are not supported");
        }
    }

    // "default" is HF's name for no scaling; any other unknown type is kept so Validate names it as unsupported.
    private static RopeScaling? ReadRopeScaling(JsonKeys keys)
    {
        var scaling = keys.Object("rope_scaling");
        if (scaling is null)
        {
            return null;
        }
        string type = scaling.String("rope_type") ?? scaling.String("type")
            ?? throw new ModelFormatException(keys.Source, "rope_scaling needs 'rope_type' (or 'type')");
        if (type == "default")
        {
            return null;
        }
        double factor = type is "linear" or "llama3" ? scaling.RequiredDouble("factor") : scaling.Double("factor") ?? 1;
        return new RopeScaling(type, factor,
            scaling.Double("low_freq_factor") ?? 1,
            scaling.Double("high_freq_factor") ?? 4,
            scaling.Int("original_max_position_embeddings") ?? 8192);
    }

    private static void WriteRopeScaling(Utf8JsonWriter json, RopeScaling? scaling)
    {
        if (scaling is null)
        {
            json.WriteNull("rope_scaling");
            return;
        }
        json.WriteStartObject("rope_scaling");
        json.WriteString("rope_type", scaling.Type);
        json.WriteNumber("factor", scaling.Factor);
        if (scaling.Type == "llama3")
        {
            json.WriteNumber("low_freq_factor", scaling.LowFreqFactor);
            json.WriteNumber("high_freq_factor", scaling.HighFreqFactor);
            json.WriteNumber("original_max_position_embeddings", scaling.OriginalMaxPositions);
        }
        json.WriteEndObject();
    }

    private static string TorchDtypeName(DType dtype) => dtype switch
    {
        DType.F32 => "float32",
        DType.F64 => "float64",
        DType.F16 => "float16",
        DType.BF16 => "bfloat16",
        _ => throw new ArgumentOutOfRangeException(nameof(dtype), dtype, null),
    };
}
