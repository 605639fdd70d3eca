namespace NativeReft.Model;

/// <summary>
/// Canonical weight names (HF transformers' LlamaForCausalLM) and shapes. Every loader maps its file's names to
/// these, so the model has one vocabulary of weights whatever the format.
/// </summary>
public static class WeightNames
{
    /// <summary>(vocab, dim)</summary>
    public const string Embedding = "model.embed_tokens.weight";

    /// <summary>(dim)</summary>
    public const string FinalNorm = "model.norm.weight";

    /// <summary>(vocab, dim); absent when the embedding is tied.</summary>
    public const string Classifier = "lm_head.weight";

    /// <summary>(dim)</summary>
    public static string AttentionNorm(int layer) => $"model.layers.{layer}.input_layernorm.weight";

    /// <summary>(heads * headSize, dim)</summary>
    public static string Wq(int layer) => $"model.layers.{layer}.self_attn.q_proj.weight";

    /// <summary>(kvHeads * headSize, dim)</summary>
    public static string Wk(int layer) => $"model.layers.{layer}.self_attn.k_proj.weight";

    /// <summary>(kvHeads * headSize, dim)</summary>
    public static string Wv(int layer) => $"model.layers.{layer}.self_attn.v_proj.weight";

    /// <summary>(dim, heads * headSize)</summary>
    public static string Wo(int layer) => $"model.layers.{layer}.self_attn.o_proj.weight";

    /// <summary>(dim)</summary>
    public static string FfnNorm(int layer) => $"model.layers.{layer}.post_attention_layernorm.weight";

    /// <summary>(hidden, dim)</summary>
    public static string WGate(int layer) => $"model.layers.{layer}.mlp.gate_proj.weight";

    /// <summary>(hidden, dim)</summary>
    public static string WUp(int layer) => $"model.layers.{layer}.mlp.up_proj.weight";

    /// <summary>(dim, hidden)</summary>
    public static string WDown(int layer) => $"model.layers.{layer}.mlp.down_proj.weight";

    /// <summary>Every weight a model of <paramref name="config"/> needs, with its shape.</summary>
    public static IEnumerable<(string Name, int[] Shape)> Expected(LlamaConfig config)
    {
        int d = config.Dim;
        yield return (Embedding, [config.VocabSize, d]);
        for (int l = 0; l < config.Layers; l++)
        {
            yield return (AttentionNorm(l), [d]);
            yield return (Wq(l), [config.QDim, d]);
            yield return (Wk(l), [config.KvDim, d]);
            yield return (Wv(l), [config.KvDim, d]);
            yield return (Wo(l), [d, config.QDim]);
            yield return (FfnNorm(l), [d]);
            yield return (WGate(l), [config.HiddenDim, d]);
            yield return (WUp(l), [config.HiddenDim, d]);
            yield return (WDown(l), [d, config.HiddenDim]);
        }
        yield return (FinalNorm, [d]);
        if (!config.TiedEmbeddings)
        {
            yield return (Classifier, [config.VocabSize, d]);
        }
    }
}
