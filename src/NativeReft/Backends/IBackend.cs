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

    /// <summary>Waits until the work queued so far has finished (a no-op where ops run synchronously, as on the CPU).</summary>
    void Synchronize()
    {
    }

    /// <summary>A zero-filled tensor.</summary>
    Tensor Zeros(params int[] shape);

    /// <summary>
    /// A tensor whose contents are undefined until written: for the output of an op that writes every element, where
    /// a GPU backend would otherwise spend a full write pass on zeros. This default is <see cref="Zeros"/>.
    /// </summary>
    Tensor Empty(params int[] shape) => Zeros(shape);

    /// <summary>A tensor holding <paramref name="data"/> (converted to the backend's type).</summary>
    Tensor Upload(ReadOnlySpan<float> data, params int[] shape);

    /// <summary>
    /// A zero-filled tensor kept in at least fp32 whatever the backend computes activations in: intervention
    /// parameters, their gradients and AdamW moments, RoPE tables, dropout scales. The CPU backends keep their own
    /// type (float or double); the CUDA backend, whose activations are bf16, stores these in fp32.
    /// </summary>
    Tensor ZerosFp32(params int[] shape) => Zeros(shape);

    /// <summary>A tensor holding <paramref name="data"/> in at least fp32 (see <see cref="ZerosFp32"/>).</summary>
    Tensor UploadFp32(ReadOnlySpan<float> data, params int[] shape) => Upload(data, shape);

    /// <summary>
    /// A tensor of <see cref="CounterHash.Uniform"/>(seed, i, scale) values, in the backend's type: random weights
    /// of a model shape without a checkpoint (benchmarks). A GPU backend makes them on the device.
    /// </summary>
    Tensor RandomUniform(int[] shape, float scale, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(shape);
        var values = new float[shape.Aggregate(1L, (a, b) => a * b)];
        for (long i = 0; i < values.Length; i++)
        {
            values[i] = CounterHash.Uniform(seed, i, scale);
        }
        return Upload(values, shape);
    }

    /// <summary>
    /// A (rows, dim) tensor of dropout scales in at least fp32: 0 where <see cref="CounterHash.Drops"/>(stream, i,
    /// probability), else (float)(1 / (1 - probability)); the same masks on every backend. A GPU backend makes them
    /// on the device, so a training step with dropout uploads nothing.
    /// </summary>
    Tensor DropoutScale(int rows, int dim, double probability, ulong stream)
    {
        var scale = new float[checked(rows * dim)];
        float keep = (float)(1 / (1 - probability));
        for (int i = 0; i < scale.Length; i++)
        {
            scale[i] = CounterHash.Drops(stream, i, probability) ? 0 : keep;
        }
        return UploadFp32(scale, rows, dim); // fp32: 1 / (1 - p) is rarely a bf16 value
    }

    /// <summary>A tensor holding a checkpoint weight, converted on the way from the mapped file.</summary>
    Tensor LoadWeight(WeightTensor weight);

    /// <summary>Copies a tensor to host memory as float.</summary>
    void Download(Tensor source, Span<float> destination);

    /// <summary>output[i, :] = table[tokens[i], :]. table (vocab, C), output (N, C).</summary>
    void Embedding(Tensor table, ReadOnlySpan<int> tokens, Tensor output);

    /// <summary>destination[i, :] = source[rows[i], :]: the same row gather as <see cref="Embedding"/>.</summary>
    void GatherRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination) => Embedding(source, rows, destination);

    /// <summary>output = x * rsqrt(mean(x^2) + eps) * weight over each row. x, output (N, C); weight (C).</summary>
    void RmsNorm(Tensor x, Tensor weight, float eps, Tensor output);

    /// <summary>
    /// sum = a + b, then output = <see cref="RmsNorm"/>(sum): the residual add that closes a sublayer and the norm
    /// that opens the next, fused where the backend can (one pass on a GPU). sum may be a (in place).
    /// </summary>
    void AddRmsNorm(Tensor a, Tensor b, Tensor weight, float eps, Tensor sum, Tensor output)
    {
        Add(a, b, sum);
        RmsNorm(sum, weight, eps, output);
    }

    /// <summary>output = x weight^T (a Linear layer). x (M, K), weight (N, K), output (M, N).</summary>
    void MatMul(Tensor x, Tensor weight, Tensor output);

    /// <summary>
    /// output = residual + x weight^T: a Linear layer and the residual add after it, output either the residual
    /// itself (in place) or a tensor apart from it. A GPU backend adds in the GEMM's epilogue; this default is the
    /// two ops.
    /// </summary>
    void MatMulAdd(Tensor x, Tensor weight, Tensor residual, Tensor output)
    {
        ArgumentNullException.ThrowIfNull(output);
        if (ReferenceEquals(residual, output))
        {
            using var product = Empty(output.Shape.ToArray());
            MatMul(x, weight, product);
            Add(residual, product, output);
            return;
        }
        MatMul(x, weight, output);
        Add(residual, output, output);
    }

    /// <summary>
    /// Rotates each head of x in place by its row's position, HF <c>rotate_half</c> layout:
    /// (a, b) = (x[i], x[i + hs/2]) becomes (a cos - b sin, b cos + a sin) with angle positions[row] * invFreq[i].
    /// x (N, heads * hs); cos, sin (maxPositions, hs/2) tables; positions (N).
    /// </summary>
    /// <remarks>With <paramref name="inverse"/> it rotates by the negative angle: RoPE's backward.</remarks>
    void Rope(Tensor x, Tensor cos, Tensor sin, ReadOnlySpan<int> positions, int heads, bool inverse = false);

    /// <summary>Causal grouped-query attention; see <see cref="AttentionShape"/> for layouts and masking.</summary>
    void Attention(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask);

    /// <summary>
    /// <see cref="Attention"/> ahead of a backward: also returns what this backend's backward can reuse (on a GPU
    /// the softmax's log-sum-exp per row and head), to hand, with <paramref name="output"/>, to the
    /// <see cref="AttentionBackward(Tensor, Tensor, Tensor, Tensor, Tensor?, Tensor, Tensor, Tensor, Tensor, AttentionShape, ReadOnlySpan{bool})"/>
    /// that takes them; the caller disposes it. Null: the backward recomputes everything (the default).
    /// </summary>
    Tensor? AttentionForBackward(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        Attention(q, k, v, output, shape, keyMask);
        return null;
    }

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

    // ---- Backward and training ops. Activation gradients are written (=), or added (+=) where the caller asks
    // (accumulate: a gradient that already holds another op's share, added in the same pass); parameter gradients
    // accumulate (+=).

    /// <summary>
    /// dX = d(rmsnorm(x) * weight)/dx applied to dOut, row by row, or dX += that when <paramref name="accumulate"/>.
    /// x, dOut, dX (N, C); dX aliases neither x nor dOut.
    /// </summary>
    void RmsNormBackward(Tensor x, Tensor weight, float eps, Tensor dOut, Tensor dX, bool accumulate = false);

    /// <summary>
    /// dX = dOut weight, or dX += dOut weight when <paramref name="accumulate"/>: the input gradient of
    /// <see cref="MatMul"/>. dOut (M, N), weight (N, K), dX (M, K); dX aliases neither.
    /// </summary>
    void MatMulInputGrad(Tensor dOut, Tensor weight, Tensor dX, bool accumulate = false);

    /// <summary>dQ, dK, dV of <see cref="Attention"/> for upstream dOut (recomputing the softmax from q and k).</summary>
    void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dQ, Tensor dK, Tensor dV,
        AttentionShape shape, ReadOnlySpan<bool> keyMask);

    /// <summary>
    /// The same gradients after <see cref="AttentionForBackward"/>, given its <paramref name="output"/> and the
    /// <paramref name="saved"/> tensor it returned (null: as the other overload).
    /// </summary>
    void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor output, Tensor? saved, Tensor dOut, Tensor dQ, Tensor dK,
        Tensor dV, AttentionShape shape, ReadOnlySpan<bool> keyMask) =>
        AttentionBackward(q, k, v, dOut, dQ, dK, dV, shape, keyMask);

    /// <summary>dGate = dOut * up * silu'(gate), dUp = dOut * silu(gate). All (N, H).</summary>
    void SwiGluBackward(Tensor gate, Tensor up, Tensor dOut, Tensor dGate, Tensor dUp);

    /// <summary>
    /// Cross-entropy of each row of <paramref name="logits"/> (N, V) against targets[i] (a negative target is
    /// ignored), fused with its backward: dLogits = gradScale * (softmax(logits) - onehot(target)), zero on
    /// ignored rows. Returns the sum of the losses of the rows not ignored. dLogits may be logits (the gradient
    /// overwrites the logits it came from).
    /// </summary>
    double CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale);

    /// <summary>destination[rows[i], :] += source[i, :]. The backward of a row gather.</summary>
    void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination);

    /// <summary>destination[rows[i], :] = source[i, :].</summary>
    void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination);

    /// <summary>x *= factor, in place.</summary>
    void Scale(Tensor x, double factor);

    /// <summary>Sum of x[i]^2 (accumulated in double): for the global gradient norm.</summary>
    double SumOfSquares(Tensor x);

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> (same shape).</summary>
    void Copy(Tensor source, Tensor destination);

    /// <summary>
    /// The ReFT edit of each row h of <paramref name="h"/> (N, d), see <see cref="InterventionTensors"/>:
    /// output = mask * (h + P^T (s - [subtract] P h)) with s = act(W h + b), or s = b without W.
    /// <paramref name="dropoutScale"/> (N, d) holds 0 or 1 / (1 - p) per element, or is null.
    /// </summary>
    void Intervene(Tensor h, InterventionTensors parameters, Tensor output, Tensor? dropoutScale);

    /// <summary>
    /// Backward of <see cref="Intervene"/>: writes dH and accumulates the parameter gradients into
    /// <paramref name="gradients"/> (same layout as the parameters).
    /// </summary>
    void InterveneBackward(Tensor h, InterventionTensors parameters, Tensor dOut, Tensor? dropoutScale, Tensor dH,
        InterventionTensors gradients);

    /// <summary>
    /// One AdamW update of <paramref name="parameter"/> from <paramref name="gradient"/> with moment buffers m, v
    /// (decoupled weight decay; bias correction for step <paramref name="step"/>, counted from 1).
    /// </summary>
    void AdamW(Tensor parameter, Tensor gradient, Tensor m, Tensor v, in AdamWStep step);

    /// <summary>Makes the rows of <paramref name="matrix"/> (r, d), r &lt;= d, orthonormal (Gram-Schmidt).</summary>
    void OrthonormalizeRows(Tensor matrix);

    // ---- The same optimizer ops over every parameter of a set at once. An intervention set holds tens to hundreds
    // of small tensors: a GPU backend does each in one launch instead of one launch per tensor.

    /// <summary>
    /// <see cref="AdamW(Tensor, Tensor, Tensor, Tensor, in AdamWStep)"/> for every target; a target's weight decay
    /// is <paramref name="step"/>'s when <see cref="AdamWTarget.Decay"/> is set, else none.
    /// </summary>
    void AdamW(IReadOnlyList<AdamWTarget> targets, in AdamWStep step)
    {
        ArgumentNullException.ThrowIfNull(targets);
        foreach (var t in targets)
        {
            AdamW(t.Parameter, t.Gradient, t.M, t.V, t.Decay ? step : step with { WeightDecay = 0 });
        }
    }

    /// <summary>The sum of x[i]^2 over every tensor (the global gradient norm's square).</summary>
    double SumOfSquares(IReadOnlyList<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        double sum = 0;
        foreach (var t in tensors)
        {
            sum += SumOfSquares(t);
        }
        return sum;
    }

    /// <summary>Multiplies every tensor by <paramref name="factor"/>, in place.</summary>
    void Scale(IReadOnlyList<Tensor> tensors, double factor)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        foreach (var t in tensors)
        {
            Scale(t, factor);
        }
    }

    /// <summary><see cref="OrthonormalizeRows(Tensor)"/> for every matrix.</summary>
    void OrthonormalizeRows(IReadOnlyList<Tensor> matrices)
    {
        ArgumentNullException.ThrowIfNull(matrices);
        foreach (var m in matrices)
        {
            OrthonormalizeRows(m);
        }
    }

    // ---- A training step whose scalars stay with the backend (StepScalars): the host waits once, at the step's
    // end. The defaults suit a backend whose ops have finished when they return; a GPU backend keeps the values
    // in device memory and queues everything.

    /// <summary>New scalars for training steps on this backend.</summary>
    StepScalars CreateStepScalars() => new HostStepScalars();

    /// <summary>
    /// Whether ops return before their work is done (a GPU backend queues it): a trainer then queues the next step
    /// before it reads the last, so the device runs while the host waits and prepares. False where every op has
    /// finished when it returns (the CPU), where queuing ahead would gain nothing.
    /// </summary>
    bool QueuesWork => false;

    /// <summary>
    /// <see cref="CrossEntropy(Tensor, ReadOnlySpan{int}, Tensor, double)"/>, its summed loss added to
    /// <paramref name="step"/>'s instead of returned.
    /// </summary>
    void CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale, StepScalars step) =>
        HostStepScalars.Of(step, this).Loss += CrossEntropy(logits, targets, dLogits, gradScale);

    /// <summary>
    /// Stores the gradients' squared global norm in <paramref name="step"/>, then scales them so the norm is at most
    /// <paramref name="maxNorm"/> (torch's clip_grad_norm_: factor maxNorm / (norm + 1e-6)); no clipping when
    /// <paramref name="maxNorm"/> is 0 or the norm is not finite.
    /// </summary>
    void ClipGradients(IReadOnlyList<Tensor> gradients, double maxNorm, StepScalars step)
    {
        var host = HostStepScalars.Of(step, this);
        host.SumOfSquares = SumOfSquares(gradients);
        double norm = Math.Sqrt(host.SumOfSquares);
        if (maxNorm > 0 && double.IsFinite(norm) && norm > maxNorm)
        {
            Scale(gradients, maxNorm / (norm + 1e-6));
        }
    }

    /// <summary>
    /// <see cref="AdamW(IReadOnlyList{AdamWTarget}, in AdamWStep)"/> with <paramref name="step"/>'s optimizer step,
    /// skipped when the step's loss or gradient norm is not finite.
    /// </summary>
    void AdamW(IReadOnlyList<AdamWTarget> targets, StepScalars step)
    {
        if (HostStepScalars.Of(step, this).Finite)
        {
            AdamW(targets, step.Optimizer);
        }
    }

    /// <summary>
    /// <see cref="OrthonormalizeRows(IReadOnlyList{Tensor})"/>, skipped when <paramref name="step"/>'s loss or gradient
    /// norm is not finite.
    /// </summary>
    void OrthonormalizeRows(IReadOnlyList<Tensor> matrices, StepScalars step)
    {
        if (HostStepScalars.Of(step, this).Finite)
        {
            OrthonormalizeRows(matrices);
        }
    }
}

/// <summary>One parameter an AdamW step updates, with its gradient and moment buffers.</summary>
/// <param name="Parameter">The parameter (updated in place).</param>
/// <param name="Gradient">Its gradient.</param>
/// <param name="M">First moment.</param>
/// <param name="V">Second moment.</param>
/// <param name="Decay">Whether the step's weight decay applies (never to an orthonormal R).</param>
public sealed record AdamWTarget(Tensor Parameter, Tensor Gradient, Tensor M, Tensor V, bool Decay);
