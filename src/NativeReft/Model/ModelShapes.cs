namespace NativeReft.Model;

/// <summary>
/// Named LLaMA shapes for benchmarks and <c>nativereft bench</c> (random weights of the shape, no download): the
/// models users train interventions on, plus small and odd ones. bench/peers/shapes.py holds the same table for
/// the PyTorch peers; keep the two in step.
/// </summary>
public static class ModelShapes
{
    /// <summary>Llama-2-7B: dim 4096, 32 layers, 32 heads (MHA), FFN 11008, vocab 32000, untied.</summary>
    public static LlamaConfig Llama2_7B { get; } = new()
    {
        Dim = 4096, HiddenDim = 11008, Layers = 32, Heads = 32, KvHeads = 32, VocabSize = 32000, MaxSeqLen = 4096,
        TiedEmbeddings = false,
    };

    /// <summary>Llama-3-8B: dim 4096, 32 layers, 32 heads over 8 KV heads (GQA), FFN 14336, vocab 128256, RoPE theta 500000, untied.</summary>
    public static LlamaConfig Llama3_8B { get; } = new()
    {
        Dim = 4096, HiddenDim = 14336, Layers = 32, Heads = 32, KvHeads = 8, VocabSize = 128256, MaxSeqLen = 8192,
        RopeTheta = 500000, TiedEmbeddings = false,
    };

    /// <summary>TinyLlama-1.1B: dim 2048, 22 layers, 32 heads over 4 KV heads, FFN 5632, vocab 32000, untied.</summary>
    public static LlamaConfig TinyLlama_1_1B { get; } = new()
    {
        Dim = 2048, HiddenDim = 5632, Layers = 22, Heads = 32, KvHeads = 4, VocabSize = 32000, MaxSeqLen = 2048,
        TiedEmbeddings = false,
    };

    /// <summary>
    /// A shape with nothing a power of two: head size 90, 12 heads over 4 KV heads, FFN 2900, vocab 32003, so every
    /// kernel's tail paths and every GEMM's odd leading dimension run.
    /// </summary>
    public static LlamaConfig Odd { get; } = new()
    {
        Dim = 1080, HiddenDim = 2900, Layers = 3, Heads = 12, KvHeads = 4, VocabSize = 32003, MaxSeqLen = 1024,
        TiedEmbeddings = false,
    };

    /// <summary>llama2.c's stories15M shape: dim 288, 6 layers, 6 heads, hidden 768, vocab 32000, 256 positions.</summary>
    public static LlamaConfig Llama2c15M { get; } = new()
    {
        Dim = 288, HiddenDim = 768, Layers = 6, Heads = 6, KvHeads = 6, VocabSize = 32000, MaxSeqLen = 256,
    };

    /// <summary>The stories260K shape (../shared/data/stories260K has the real weights).</summary>
    public static LlamaConfig Stories260K { get; } = new()
    {
        Dim = 64, HiddenDim = 172, Layers = 5, Heads = 8, KvHeads = 4, VocabSize = 512, MaxSeqLen = 512,
    };

    /// <summary>
    /// The smallest shape whose attention runs on the tensor cores (head size 64: dim 128, 2 heads over 1 KV head,
    /// 2 layers, FFN 256, vocab 512): the GPU path end to end in seconds, on the emulator too.
    /// </summary>
    public static LlamaConfig TinyHeadSize64 { get; } = new()
    {
        Dim = 128, HiddenDim = 256, Layers = 2, Heads = 2, KvHeads = 1, VocabSize = 512, MaxSeqLen = 512,
    };

    /// <summary>Every shape by the name options and [Params] use.</summary>
    public static IReadOnlyDictionary<string, LlamaConfig> All { get; } = new Dictionary<string, LlamaConfig>
    {
        ["llama2-7b"] = Llama2_7B,
        ["llama3-8b"] = Llama3_8B,
        ["tinyllama-1.1b"] = TinyLlama_1_1B,
        ["odd"] = Odd,
        ["llama2c-15M"] = Llama2c15M,
        ["stories260K"] = Stories260K,
        ["tiny-hs64"] = TinyHeadSize64,
    };

    /// <summary>The shape called <paramref name="name"/> (case-insensitive), or an error listing the names.</summary>
    public static LlamaConfig ByName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        foreach (var (key, config) in All)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                return config;
            }
        }
        throw new InputException($"unknown model shape '{name}': use one of {string.Join(", ", All.Keys)}");
    }

    /// <summary>Parameters of a shape: embedding, every layer's norms and projections, final norm, classifier.</summary>
    public static long ParameterCount(LlamaConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        return WeightNames.Expected(config).Sum(e => e.Shape.Aggregate(1L, (a, b) => a * b));
    }
}
