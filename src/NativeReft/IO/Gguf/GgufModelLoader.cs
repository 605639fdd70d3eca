using System.Globalization;
using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.IO.Gguf;

/// <summary>
/// Loads a llama-architecture GGUF with F32, F16 or BF16 tensors: the config from the <c>llama.*</c> metadata, the
/// weights mapped to HF names (memory-mapped, nothing copied), and the embedded tokenizer when it is a SentencePiece
/// (<c>tokenizer.ggml.model</c> = "llama") vocabulary. Other tokenizer models ("gpt2", ...) are byte-level BPE with
/// merges, which <see cref="ScoredBpeTokenizer"/> cannot express: such a file loads without a tokenizer
/// (<see cref="Checkpoint.Tokenizer"/> is null) and the caller supplies one with <see cref="Checkpoint.UseTokenizer"/>.
/// </summary>
public static class GgufModelLoader
{
    private const string RopeFactorsTensor = "rope_freqs.weight";

    /// <summary>Maps <paramref name="path"/>, checks its header and describes its weights.</summary>
    public static Checkpoint Load(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            var gguf = GgufFile.Read(file);
            string architecture = gguf.GetString("general.architecture");
            if (architecture != "llama")
            {
                throw new ModelFormatException(path, $"unsupported architecture '{architecture}' (supported: llama)");
            }
            var config = ReadConfig(gguf, file);
            var weights = Describe(gguf, config, file);
            return new Checkpoint(path, config, weights, [file], ReadTokenizer(gguf, config));
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static LlamaConfig ReadConfig(GgufFile gguf, MappedFile file)
    {
        int heads = gguf.GetInt32("llama.attention.head_count");
        int vocab = gguf.FindInt32("llama.vocab_size")
            ?? gguf.FindArray<string>("tokenizer.ggml.tokens")?.Length
            ?? throw new ModelFormatException(gguf.Path, "missing metadata key 'llama.vocab_size' (and no tokenizer.ggml.tokens to count)");
        var config = new LlamaConfig
        {
            Dim = gguf.GetInt32("llama.embedding_length"),
            HiddenDim = gguf.GetInt32("llama.feed_forward_length"),
            Layers = gguf.GetInt32("llama.block_count"),
            Heads = heads,
            KvHeads = gguf.FindInt32("llama.attention.head_count_kv") ?? heads,
            VocabSize = vocab,
            MaxSeqLen = gguf.FindInt32("llama.context_length") ?? 2048,
            NormEps = (float)(gguf.FindNumber("llama.attention.layer_norm_rms_epsilon") ?? 1e-5),
            RopeTheta = gguf.FindNumber("llama.rope.freq_base") ?? 10000,
            RopeScaling = ReadRopeScaling(gguf),
            // llama.cpp falls back to the embedding when output.weight is absent.
            TiedEmbeddings = !gguf.Tensors.Any(t => t.Name == "output.weight"),
            BosId = gguf.FindInt32("tokenizer.ggml.bos_token_id") ?? 1,
            EosId = gguf.FindInt32("tokenizer.ggml.eos_token_id") ?? 2,
        };
        config.Validate(gguf.Path);
        if (gguf.FindInt32("llama.rope.dimension_count") is { } ropeDims && ropeDims != config.HeadSize)
        {
            throw new ModelFormatException(gguf.Path,
                $"llama.rope.dimension_count is {ropeDims} but the head size (embedding_length / head_count) is {config.HeadSize}: partial rotary embeddings are not supported");
        }
        return config with { RopeScaling = RopeScalingFromFactors(gguf, file, config) };
    }

    private static RopeScaling? ReadRopeScaling(GgufFile gguf)
    {
        string? type = gguf.FindString("llama.rope.scaling.type");
        if (type is null or "none")
        {
            // Converters before rope.scaling.* wrote only a linear factor.
            return gguf.FindNumber("llama.rope.scale_linear") is { } legacy && legacy != 1 ? new RopeScaling("linear", legacy) : null;
        }
        if (type != "linear")
        {
            throw new ModelFormatException(gguf.Path, $"llama.rope.scaling.type '{type}' is not supported (supported: none, linear)");
        }
        return new RopeScaling("linear", gguf.FindNumber("llama.rope.scaling.factor")
            ?? throw new ModelFormatException(gguf.Path, "missing metadata key 'llama.rope.scaling.factor'"));
    }

    // llama.cpp stores Llama 3.x's RoPE scaling as per-frequency divisors in a tensor, not as metadata. Ignoring them
    // would silently change the numerics, so they are matched against HF's llama3 formula (the factor is the largest
    // divisor; 3.1 and 3.2 differ only there) and anything else is refused.
    private static RopeScaling? RopeScalingFromFactors(GgufFile gguf, MappedFile file, LlamaConfig config)
    {
        if (gguf.Tensors.FirstOrDefault(t => t.Name == RopeFactorsTensor) is not { } tensor)
        {
            return config.RopeScaling;
        }
        int half = config.HeadSize / 2;
        if (tensor.ElementCount != half)
        {
            throw new ModelFormatException(gguf.Path, $"tensor '{RopeFactorsTensor}' has {tensor.ElementCount} elements, the head size {config.HeadSize} needs {half}");
        }
        float[] factors = new WeightTensor(RopeFactorsTensor, [half], tensor.DType, file, tensor.Offset).ReadAll();
        if (factors.All(f => f == 1))
        {
            return config.RopeScaling;
        }
        if (config.RopeScaling is not null)
        {
            throw new ModelFormatException(gguf.Path, $"both llama.rope.scaling metadata and a '{RopeFactorsTensor}' tensor scale RoPE; expected one");
        }
        var llama3 = new RopeScaling("llama3", factors.Max(), LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192);
        double[] plain = (config with { RopeScaling = null }).RopeInverseFrequencies();
        double[] scaled = (config with { RopeScaling = llama3 }).RopeInverseFrequencies();
        for (int i = 0; i < half; i++)
        {
            double expected = plain[i] / scaled[i];
            if (Math.Abs(factors[i] - expected) > 1e-3 * expected)
            {
                throw new ModelFormatException(gguf.Path,
                    $"tensor '{RopeFactorsTensor}' holds RoPE frequency factors that are not Llama 3's scaling (factor {llama3.Factor}, low 1, high 4, original context 8192; element {i} is {factors[i]}, expected {expected}): not supported");
            }
        }
        return llama3;
    }

    private static Dictionary<string, WeightTensor> Describe(GgufFile gguf, LlamaConfig config, MappedFile file)
    {
        var weights = new Dictionary<string, WeightTensor>();
        foreach (var tensor in gguf.Tensors)
        {
            if (CanonicalName(gguf.Path, tensor.Name, config.Layers) is not { } name)
            {
                continue; // rope_freqs (handled above) and anything a llama forward does not use
            }
            // GGUF llama Q/K rows interleave RoPE pairs (llama.cpp's converter permutes HF weights): undo on read.
            int ropeHeads = tensor.Name.EndsWith(".attn_q.weight", StringComparison.Ordinal) ? config.Heads
                : tensor.Name.EndsWith(".attn_k.weight", StringComparison.Ordinal) ? config.KvHeads
                : 0;
            weights[name] = new WeightTensor(name, tensor.Shape, tensor.DType, file, tensor.Offset, ropeHeads);
        }
        return weights;
    }

    private static string? CanonicalName(string path, string name, int layers)
    {
        switch (name)
        {
            case "token_embd.weight": return WeightNames.Embedding;
            case "output_norm.weight": return WeightNames.FinalNorm;
            case "output.weight": return WeightNames.Classifier;
        }
        int dot = name.StartsWith("blk.", StringComparison.Ordinal) ? name.IndexOf('.', 4) : -1;
        if (dot < 0 || !int.TryParse(name.AsSpan(4, dot - 4), NumberStyles.None, CultureInfo.InvariantCulture, out int layer))
        {
            return null;
        }
        Func<int, string>? canonical = name[(dot + 1)..] switch
        {
            "attn_norm.weight" => WeightNames.AttentionNorm,
            "attn_q.weight" => WeightNames.Wq,
            "attn_k.weight" => WeightNames.Wk,
            "attn_v.weight" => WeightNames.Wv,
            "attn_output.weight" => WeightNames.Wo,
            "ffn_norm.weight" => WeightNames.FfnNorm,
            "ffn_gate.weight" => WeightNames.WGate,
            "ffn_up.weight" => WeightNames.WUp,
            "ffn_down.weight" => WeightNames.WDown,
            _ => null,
        };
        if (canonical is not null && layer >= layers)
        {
            throw new ModelFormatException(path, $"tensor '{name}' belongs to layer {layer}, but llama.block_count is {layers}");
        }
        return canonical?.Invoke(layer);
    }

    private static ScoredBpeTokenizer? ReadTokenizer(GgufFile gguf, LlamaConfig config)
    {
        if (gguf.FindString("tokenizer.ggml.model") != "llama" || gguf.FindArray<string>("tokenizer.ggml.tokens") is not { } tokens)
        {
            return null;
        }
        float[] scores = gguf.FindArray<float>("tokenizer.ggml.scores") ?? new float[tokens.Length];
        if (scores.Length != tokens.Length)
        {
            throw new ModelFormatException(gguf.Path,
                $"tokenizer.ggml.scores has {scores.Length} entries but tokenizer.ggml.tokens has {tokens.Length}");
        }
        // SentencePiece marks spaces with U+2581; ScoredBpeTokenizer works on plain spaces, as llama2.c's tokenizer.bin.
        string[] pieces = [.. tokens.Select(t => t.Replace('\u2581', ' '))];
        return new ScoredBpeTokenizer(pieces, scores, config.BosId, config.EosId);
    }
}
