using NativeReft.IO.Gguf;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.Tests.IO;

/// <summary>
/// GGUF writers preloaded with a small llama (HF-layout weights, e.g. from TinyModels) laid out as llama.cpp does:
/// GGUF names, Q/K rows with RoPE pairs interleaved, and a SentencePiece vocabulary that fits the config.
/// </summary>
internal static class TinyGguf
{
    /// <summary>Metadata and tensors for <paramref name="config"/>; weights missing from the dictionary are left out.</summary>
    public static GgufWriter Writer(LlamaConfig config, IReadOnlyDictionary<string, float[]> weights, DType type, int alignment = 32)
    {
        var writer = new GgufWriter { Alignment = alignment };
        writer.Set("general.architecture", "llama");
        writer.Set("general.name", "tiny");
        writer.Set("llama.embedding_length", (uint)config.Dim);
        writer.Set("llama.feed_forward_length", (uint)config.HiddenDim);
        writer.Set("llama.block_count", (uint)config.Layers);
        writer.Set("llama.attention.head_count", (uint)config.Heads);
        writer.Set("llama.attention.head_count_kv", (uint)config.KvHeads);
        writer.Set("llama.context_length", (uint)config.MaxSeqLen);
        writer.Set("llama.attention.layer_norm_rms_epsilon", config.NormEps);
        writer.Set("llama.rope.freq_base", (float)config.RopeTheta);
        writer.Set("llama.rope.dimension_count", (uint)config.HeadSize);
        writer.Set("llama.vocab_size", (uint)config.VocabSize);
        writer.Set("tokenizer.ggml.model", "llama");
        writer.Set("tokenizer.ggml.tokens", Pieces(config.VocabSize));
        writer.Set("tokenizer.ggml.scores", Scores(config.VocabSize));
        writer.Set("tokenizer.ggml.bos_token_id", 1u);
        writer.Set("tokenizer.ggml.eos_token_id", 2u);
        foreach (var (gguf, hf, ropeHeads) in Names(config))
        {
            if (!weights.TryGetValue(hf, out float[]? data))
            {
                continue;
            }
            int[] shape = WeightNames.Expected(config).First(e => e.Name == hf).Shape;
            writer.AddTensor(gguf, shape, type, ropeHeads > 0 ? Interleave(data, shape[1], ropeHeads) : data);
        }
        return writer;
    }

    /// <summary>
    /// SentencePiece-style pieces as GGUF stores them (U+2581 for a space): the three specials, "▁", the letters, then
    /// merges "▁a", "▁b", ... (ids 30, 31, ...).
    /// </summary>
    public static string[] Pieces(int count) =>
        [.. new[] { "<unk>", "<s>", "</s>", "\u2581" }.Concat(Enumerable.Range(0, count - 4).Select(Piece))];

    private static string Piece(int i) =>
        i < 26 ? ((char)('a' + i)).ToString() : "\u2581" + (char)('a' + i % 26) + new string('z', i / 26 - 1);

    /// <summary>Distinct descending scores, like a trained vocabulary's.</summary>
    public static float[] Scores(int count) => [.. Enumerable.Range(0, count).Select(i => -0.5f * i)];

    /// <summary>(GGUF name, HF name, heads whose RoPE pairs GGUF interleaves) for every weight of the config.</summary>
    public static IEnumerable<(string Gguf, string Hf, int RopeHeads)> Names(LlamaConfig config)
    {
        yield return ("token_embd.weight", WeightNames.Embedding, 0);
        for (int l = 0; l < config.Layers; l++)
        {
            yield return ($"blk.{l}.attn_norm.weight", WeightNames.AttentionNorm(l), 0);
            yield return ($"blk.{l}.attn_q.weight", WeightNames.Wq(l), config.Heads);
            yield return ($"blk.{l}.attn_k.weight", WeightNames.Wk(l), config.KvHeads);
            yield return ($"blk.{l}.attn_v.weight", WeightNames.Wv(l), 0);
            yield return ($"blk.{l}.attn_output.weight", WeightNames.Wo(l), 0);
            yield return ($"blk.{l}.ffn_norm.weight", WeightNames.FfnNorm(l), 0);
            yield return ($"blk.{l}.ffn_gate.weight", WeightNames.WGate(l), 0);
            yield return ($"blk.{l}.ffn_up.weight", WeightNames.WUp(l), 0);
            yield return ($"blk.{l}.ffn_down.weight", WeightNames.WDown(l), 0);
        }
        yield return ("output_norm.weight", WeightNames.FinalNorm, 0);
        if (!config.TiedEmbeddings)
        {
            yield return ("output.weight", WeightNames.Classifier, 0);
        }
    }

    /// <summary>llama.cpp's Q/K permutation: HF row (h, j * half + i) goes to row (h, 2 i + j).</summary>
    public static float[] Interleave(float[] hf, int columns, int heads)
    {
        int rows = hf.Length / columns;
        int headSize = rows / heads;
        int half = headSize / 2;
        var interleaved = new float[hf.Length];
        for (int row = 0; row < rows; row++)
        {
            int head = row / headSize, within = row % headSize;
            int target = head * headSize + 2 * (within % half) + within / half;
            hf.AsSpan(row * columns, columns).CopyTo(interleaved.AsSpan(target * columns, columns));
        }
        return interleaved;
    }
}
