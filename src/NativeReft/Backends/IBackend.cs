using NativeReft.IO;
using NativeReft.Tensors;

namespace NativeReft.Backends;

/// <summary>
/// What the LLaMA model needs from a compute backend. Tensors are row-major; ops read the flattened 2-D view
/// (rows = all dimensions but the last) unless they say otherwise, and write into an output the caller allocated,
/// so a backend never allocates behind the model's back. The CPU backend is the numerical reference; a CUDA
/// backend implements the same contract.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>Short name for messages, e.g. "cpu-f32".</summary>
    string Name { get; }

    /// <summary>Element type of the tensors this backend computes in.</summary>
    DType DType { get; }

    /// <summary>A zero-filled tensor.</summary>
    Tensor Zeros(params int[] shape);

    /// <summary>A tensor holding <paramref name="data"/> (converted to the backend's type).</summary>
    Tensor Upload(ReadOnlySpan<float> data, params int[] shape);

    /// <summary>A tensor holding a checkpoint weight, converted on the way from the mapped file.</summary>
    Tensor LoadWeight(WeightTensor weight);

    /// <summary>Copies a tensor to host memory as float.</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>output[i, :] = table[tokens[i], :]. table (vocab, C), output (N, C).</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> tokens, Tensor output);

    /// <summary>output = x * rsqrt(mean(x^2) + eps) * weight over each row. x, output (N, C); weight (C).</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output);

    /// <summary>output = x weight^T (a Linear layer). x (M, K), weight (N, K), output (M, N).</summary>
    void MatMul(Tensor x, Tensor weight, Tensor output);

    /// <summary>
    /// Rotates each head of x in place by its row's position, HF <c>rotate_half</c> layout:
    /// (a, b) = (x[i], x[i + hs/2]) becomes (a cos - b sin, b cos + a sin) with angle positions[row] * invFreq[i].
    /// x (N, heads * hs); cos, sin (maxPositions, hs/2) tables; positions (N).
    /// </summary>
    void Rope(Tensor x, Tensor cos, Tensor sin, ReadOnlySpan<int> positions, int heads);

    /// <summary>Causal grouped-query attention; see <see cref="AttentionShape"/> for layouts and masking.</summary>
    void Attention(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask);

    /// <summary>output = silu(gate) * up, elementwise. All (N, H).</summary>
    void SwiGlu(Tensor gate, Tensor up, Tensor output);

    /// <summary>output = a + b, elementwise (the residual stream; output may alias a).</summary>
    void Add(Tensor a, Tensor b, Tensor output);

    /// <summary>
    /// Copies the rows of <paramref name="source"/> (batch * rowsPerBatch, C) into <paramref name="destination"/>
    /// (batch * destinationStride, C), batch b's rows landing at b * destinationStride + destinationOffset.
    /// This is how K and V enter the KV cache.
    /// </summary>
    void CopyRows(Tensor source, Tensor destination, int batch, int destinationStride, int destinationOffset);
}
