"""The model shapes of src/NativeReft/Model/ModelShapes.cs as HF LlamaConfig keyword arguments.

Keep this table identical to ModelShapes.cs (its summary says so too): a peer and `nativereft bench train` must
build the same network for a ratio to mean anything. `parameter_count` follows WeightNames.Expected, and the
peers check the HF model they build against it, so a shape that drifts from HF's reading of it fails loudly.

No torch import here: run.sh and anything else can read the table without PyTorch.
"""

# Dim, HiddenDim, Layers, Heads, KvHeads, VocabSize, MaxSeqLen, RopeTheta, TiedEmbeddings, as in ModelShapes.cs.
SHAPES = {
    # Llama-2-7B: dim 4096, 32 layers, 32 heads (MHA), FFN 11008, vocab 32000, untied.
    "llama2-7b": dict(
        hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=32, vocab_size=32000, max_position_embeddings=4096, rope_theta=10000.0,
        tie_word_embeddings=False),
    # Llama-3-8B: dim 4096, 32 layers, 32 heads over 8 KV heads (GQA), FFN 14336, vocab 128256, theta 500000.
    "llama3-8b": dict(
        hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
        num_key_value_heads=8, vocab_size=128256, max_position_embeddings=8192, rope_theta=500000.0,
        tie_word_embeddings=False),
    # TinyLlama-1.1B: dim 2048, 22 layers, 32 heads over 4 KV heads, FFN 5632, vocab 32000, untied.
    "tinyllama-1.1b": dict(
        hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
        num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, rope_theta=10000.0,
        tie_word_embeddings=False),
    # Nothing a power of two: head size 90, 12 heads over 4 KV heads, FFN 2900, vocab 32003.
    "odd": dict(
        hidden_size=1080, intermediate_size=2900, num_hidden_layers=3, num_attention_heads=12,
        num_key_value_heads=4, vocab_size=32003, max_position_embeddings=1024, rope_theta=10000.0,
        tie_word_embeddings=False),
    # llama2.c's stories15M shape (tied embeddings: the C# default).
    "llama2c-15M": dict(
        hidden_size=288, intermediate_size=768, num_hidden_layers=6, num_attention_heads=6,
        num_key_value_heads=6, vocab_size=32000, max_position_embeddings=256, rope_theta=10000.0,
        tie_word_embeddings=True),
    # The stories260K shape (tied embeddings).
    "stories260K": dict(
        hidden_size=64, intermediate_size=172, num_hidden_layers=5, num_attention_heads=8,
        num_key_value_heads=4, vocab_size=512, max_position_embeddings=512, rope_theta=10000.0,
        tie_word_embeddings=True),
    # The smallest shape whose attention runs on NativeReft's tensor-core kernels (head size 64; tied embeddings).
    "tiny-hs64": dict(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=512, max_position_embeddings=512, rope_theta=10000.0,
        tie_word_embeddings=True),
}

# What every shape shares: LlamaConfig.cs defaults (NormEps 1e-5, BosId 1, EosId 2), SwiGLU, no biases.
COMMON = dict(
    rms_norm_eps=1e-5, hidden_act="silu", attention_bias=False, mlp_bias=False, bos_token_id=1, eos_token_id=2,
    pad_token_id=None, use_cache=False,
)


def canonical(name):
    """The table's key for `name`, case-insensitive as ModelShapes.ByName; ValueError listing the names."""
    for key in SHAPES:
        if key.lower() == str(name).lower():
            return key
    raise ValueError(f"unknown model shape '{name}': use one of {', '.join(SHAPES)}")


def config_kwargs(name):
    """The shape's LlamaConfig keyword arguments (rope_theta included; common.py adapts it to the HF version)."""
    return {**COMMON, **SHAPES[canonical(name)]}


def parameter_count(name):
    """Parameters of the shape, counted as ModelShapes.ParameterCount (WeightNames.Expected) counts them."""
    s = SHAPES[canonical(name)]
    d, h, layers = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
    head = d // s["num_attention_heads"]
    q, kv = s["num_attention_heads"] * head, s["num_key_value_heads"] * head
    per_layer = d + q * d + 2 * kv * d + d * q + d + 2 * h * d + d * h
    classifier = 0 if s["tie_word_embeddings"] else s["vocab_size"] * d
    return s["vocab_size"] * d + layers * per_layer + d + classifier


if __name__ == "__main__":
    for key in SHAPES:
        print(f"{key:16} {parameter_count(key):>15,} parameters")
