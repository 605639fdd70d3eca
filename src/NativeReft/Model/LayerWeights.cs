using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>One decoder layer's weights on a backend (HF layout: Linear weights are (out, in)).</summary>
internal sealed record LayerWeights(
    Tensor AttentionNorm, // (dim)
    Tensor Wq,            // (heads * headSize, dim)
    Tensor Wk,            // (kvHeads * headSize, dim)
    Tensor Wv,            // (kvHeads * headSize, dim)
    Tensor Wo,            // (dim, heads * headSize)
    Tensor FfnNorm,       // (dim)
    Tensor WGate,         // (hidden, dim)
    Tensor WUp,           // (hidden, dim)
    Tensor WDown);        // (dim, hidden)
