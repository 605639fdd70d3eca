using NativeReft.Tokenizers;

namespace NativeReft.Model;

/// <summary>
/// A tiny LLaMA the engine builds in memory, so <c>nativereft generate</c> works on a fresh clone with no model
/// file. Its weights are constructed, not trained: the embedding is one-hot, every attention and MLP output
/// projection is zero (so the residual stream carries the token through all layers untouched, while every op
/// still runs), and the classifier maps each word to the next word of <see cref="Text"/>. Greedy decoding
/// therefore recites the text: a known answer that exercises the whole forward pass and KV cache.
/// </summary>
public static class DemoModel
{
    /// <summary>What the demo model says, one vocabulary word per token.</summary>
    public const string Text = "Once upon a time, NativeReft ran a whole LLaMA forward pass on the CPU: embedding, RMSNorm, RoPE, grouped-query attention, SwiGLU and logits, with no model file at all.";

    /// <summary>The model's config and weights (HF names), and the tokenizer of its word vocabulary.</summary>
    public static (LlamaConfig Config, Dictionary<string, float[]> Weights, ITokenizer Tokenizer) Create()
    {
        string[] words = Text.Split(' ');
        // Ids 0..2 are <unk>, <s>, </s>; word i is id 3 + i (see WordTokenizer).
        int vocab = 3 + words.Length;
        int dim = (vocab + 7) / 8 * 8;
        var config = new LlamaConfig
        {
            Dim = dim, HiddenDim = 2 * dim, Layers = 2, Heads = 4, KvHeads = 2, VocabSize = vocab,
            MaxSeqLen = 256, TiedEmbeddings = false,
        };
        var weights = new Dictionary<string, float[]>();
        foreach (var (name, shape) in WeightNames.Expected(config))
        {
            long n = shape.Aggregate(1L, (a, b) => a * b);
            var w = new float[n];
            if (shape.Length == 1)
            {
                Array.Fill(w, 1f); // norm weights
            }
            else if (!name.Contains("o_proj", StringComparison.Ordinal) && !name.Contains("down_proj", StringComparison.Ordinal))
            {
                var random = new Random(name.GetHashCode(StringComparison.Ordinal) & 0x7fff);
                for (int i = 0; i < w.Length; i++)
                {
                    w[i] = (float)(random.NextDouble() - 0.5) * 0.1f; // live values so Q, K, V, gate, up really compute
                }
            }
            weights[name] = w;
        }
        var embedding = weights[WeightNames.Embedding];
        var classifier = weights[WeightNames.Classifier];
        Array.Clear(embedding);
        for (int id = 0; id < vocab; id++)
        {
            embedding[id * dim + id] = 1f;
        }
        // After the final RMSNorm token `id` is the one-hot e_id * sqrt(dim); row `next` of the classifier picks it.
        Array.Clear(classifier);
        for (int i = 0; i <= words.Length; i++)
        {
            int id = i == 0 ? 1 : 2 + i;                 // BOS, then each word
            int next = i == words.Length ? 2 : 3 + i;    // the following word, EOS after the last
            classifier[next * dim + id] = 20f; // a logit of ~20 sqrt(dim): the same text at any sane temperature
        }
        return (config, weights, new WordTokenizer(words));
    }
}
