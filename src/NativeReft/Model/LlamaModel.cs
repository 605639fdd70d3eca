using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>
/// A frozen LLaMA decoder on a backend: embedding, then per layer
/// h = x + Wo·attn(rope(Wq·n), rope(Wk·n), Wv·n) with n = rmsnorm(x), and
/// x' = h + Wdown·(silu(Wgate·m) * Wup·m) with m = rmsnorm(h); then the final norm and the classifier.
/// One code path serves the batched full-sequence forward (training, scoring) and KV-cached decoding.
/// </summary>
public sealed class LlamaModel : IDisposable
{
    private readonly LayerWeights[] layers;
    private readonly Tensor embedding;   // (vocab, dim)
    private readonly Tensor finalNorm;   // (dim)
    private readonly Tensor classifier;  // (vocab, dim); the embedding itself when tied
    private readonly Tensor ropeCos;     // (maxSeqLen, headSize / 2)
    private readonly Tensor ropeSin;     // (maxSeqLen, headSize / 2)
    private readonly InferenceOps inference; // reused buffers: the model runs one call at a time

    private LlamaModel(LlamaConfig config, IBackend backend, Func<string, Tensor> weight)
    {
        config.Validate("model config");
        Config = config;
        Backend = backend;
        embedding = weight(WeightNames.Embedding);
        finalNorm = weight(WeightNames.FinalNorm);
        classifier = config.TiedEmbeddings ? embedding : weight(WeightNames.Classifier);
        layers = new LayerWeights[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            layers[l] = new LayerWeights(
                weight(WeightNames.AttentionNorm(l)), weight(WeightNames.Wq(l)), weight(WeightNames.Wk(l)),
                weight(WeightNames.Wv(l)), weight(WeightNames.Wo(l)), weight(WeightNames.FfnNorm(l)),
                weight(WeightNames.WGate(l)), weight(WeightNames.WUp(l)), weight(WeightNames.WDown(l)));
        }
        (ropeCos, ropeSin) = RopeTables(config, backend);
        inference = new InferenceOps(backend, config);
        Fingerprint = ComputeFingerprint();
    }

    /// <summary>The model's shape and numerics.</summary>
    public LlamaConfig Config { get; }

    /// <summary>The backend holding the weights and running the ops.</summary>
    public IBackend Backend { get; }

    /// <summary>
    /// Identifies the base model: a hash of its shape and of every norm weight (small, and different between any
    /// two trained checkpoints) rounded to bf16, so the same checkpoint gives the same fingerprint on every backend
    /// (f32 on the CPU, bf16 on a GPU). Intervention artifacts record it and refuse another model.
    /// </summary>
    public string Fingerprint { get; }

    internal Tensor Classifier => classifier;

    /// <summary>Copies a checkpoint's weights to <paramref name="backend"/>.</summary>
    public static LlamaModel Load(Checkpoint checkpoint, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(checkpoint);
        ArgumentNullException.ThrowIfNull(backend);
        return new LlamaModel(checkpoint.Config, backend, name => backend.LoadWeight(checkpoint.Weights[name]));
    }

    /// <summary>Builds a model from in-memory weights named as in <see cref="WeightNames"/> (tests, tools).</summary>
    public static LlamaModel FromWeights(LlamaConfig config, IReadOnlyDictionary<string, float[]> weights, IBackend backend)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(weights);
        ArgumentNullException.ThrowIfNull(backend);
        var shapes = WeightNames.Expected(config).ToDictionary(e => e.Name, e => e.Shape);
        return new LlamaModel(config, backend, name =>
        {
            if (!weights.TryGetValue(name, out var data))
            {
                throw new ArgumentException($"missing weight '{name}'", nameof(weights));
            }
            return backend.Upload(data, shapes[name]);
        });
    }

    /// <summary>
    /// A model of <paramref name="config"/>'s shape with random weights made by the backend (on the device for a
    /// GPU): Linear and embedding weights uniform in ±1/sqrt(fan-in), norms 1. For benchmarks: no download.
    /// </summary>
    public static LlamaModel Random(LlamaConfig config, IBackend backend, ulong seed = 1234)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(backend);
        var expected = WeightNames.Expected(config).ToList();
        return new LlamaModel(config, backend, name =>
        {
            int index = expected.FindIndex(e => e.Name == name);
            int[] shape = expected[index].Shape;
            if (shape.Length == 1)
            {
                var ones = new float[shape[0]];
                Array.Fill(ones, 1f);
                return backend.Upload(ones, shape);
            }
            return backend.RandomUniform(shape, 1 / MathF.Sqrt(shape[^1]), CounterHash.Mix(seed + (ulong)index));
        });
    }

    /// <summary>A KV cache for <paramref name="batch"/> sequences of up to <paramref name="capacity"/> tokens.</summary>
    public KvCache CreateCache(int batch = 1, int capacity = 0)
    {
        capacity = capacity > 0 ? capacity : Config.MaxSeqLen;
        if (capacity > Config.MaxSeqLen)
        {
            throw new ArgumentOutOfRangeException(nameof(capacity), capacity, $"the model supports at most {Config.MaxSeqLen} positions");
        }
        return new KvCache(Backend, Config, batch, capacity);
    }

    /// <summary>
    /// Full-sequence forward of <paramref name="batch"/> sequences laid out as (batch, T) in
    /// <paramref name="tokens"/>; returns logits (batch * T, vocab). <paramref name="attentionMask"/> (batch * T,
    /// or empty for all true) marks real tokens: masked keys are never attended to, and positions count real
    /// tokens only (HF's <c>cumsum(mask) - 1</c>), so left- and right-padded batches both work.
    /// </summary>
    public Tensor Forward(ReadOnlySpan<int> tokens, int batch, ReadOnlySpan<bool> attentionMask = default)
    {
        int seqLen = SequenceLength(tokens.Length, batch);
        if (!attentionMask.IsEmpty && attentionMask.Length != tokens.Length)
        {
            throw new ArgumentException($"attention mask has {attentionMask.Length} entries for {tokens.Length} tokens", nameof(attentionMask));
        }
        var positions = new int[tokens.Length];
        for (int b = 0; b < batch; b++)
        {
            int real = 0;
            for (int t = 0; t < seqLen; t++)
            {
                int i = b * seqLen + t;
                // Padding rows get position 0: they are never attended to and their outputs are ignored.
                positions[i] = attentionMask.IsEmpty || attentionMask[i] ? real++ : 0;
            }
        }
        var hidden = Run(inference, tokens, batch, seqLen, positions, cache: null, attentionMask.IsEmpty ? null : attentionMask.ToArray(), plan: null);
        var logits = Backend.Zeros(hidden.Rows, Config.VocabSize);
        Backend.MatMul(hidden, classifier, logits);
        return logits;
    }

    /// <summary>
    /// Appends (batch, T) tokens to <paramref name="cache"/> (prefill when T &gt; 1, a decode step when T = 1) and
    /// returns the logits of each sequence's last new token, (batch, vocab).
    /// </summary>
    public Tensor Step(KvCache cache, ReadOnlySpan<int> tokens)
    {
        ArgumentNullException.ThrowIfNull(cache);
        var logits = Backend.Zeros(cache.Batch, Config.VocabSize);
        Step(cache, tokens, logits);
        return logits;
    }

    /// <summary>
    /// As <see cref="Step(KvCache, ReadOnlySpan{int})"/>, writing into <paramref name="logits"/> (batch, vocab), with
    /// <paramref name="interventions"/> editing rows of this call's tokens (row b * T + t).
    /// </summary>
    public void Step(KvCache cache, ReadOnlySpan<int> tokens, Tensor logits, Reft.InterventionPlan? interventions = null)
    {
        ArgumentNullException.ThrowIfNull(cache);
        ArgumentNullException.ThrowIfNull(logits);
        int seqLen = SequenceLength(tokens.Length, cache.Batch);
        if (cache.Length + seqLen > cache.Capacity)
        {
            throw new InvalidOperationException($"the KV cache holds {cache.Capacity} positions; {cache.Length} used, {seqLen} more requested");
        }
        var positions = new int[tokens.Length];
        for (int i = 0; i < positions.Length; i++)
        {
            positions[i] = cache.Length + i % seqLen;
        }
        var hidden = Run(inference, tokens, cache.Batch, seqLen, positions, cache, null, interventions);
        cache.Length += seqLen;
        if (seqLen > 1)
        {
            var lastRows = new int[cache.Batch];
            for (int b = 0; b < lastRows.Length; b++)
            {
                lastRows[b] = b * seqLen + seqLen - 1;
            }
            var last = Backend.Zeros(cache.Batch, Config.Dim);
            Backend.Embedding(hidden, lastRows, last); // a row gather
            hidden = last;
        }
        Backend.MatMul(hidden, classifier, logits);
    }

    /// <summary>
    /// The final-norm hidden states (batch * seqLen, dim) of a full-sequence forward through <paramref name="ops"/>
    /// (a <see cref="Training.Tape"/> when training), with <paramref name="plan"/>'s interventions applied.
    /// </summary>
    internal Tensor Hidden(IForwardOps ops, ReadOnlySpan<int> tokens, int batch, int[] positions, bool[]? mask, Reft.InterventionPlan plan) =>
        Run(ops, tokens, batch, SequenceLength(tokens.Length, batch), positions, null, mask, plan);

    /// <summary>
    /// The same on the model's inference ops: nothing recorded, one set of working tensors every layer reuses (an
    /// evaluation). The result is one of those tensors, valid until the model's next call.
    /// </summary>
    internal Tensor Hidden(ReadOnlySpan<int> tokens, int batch, int[] positions, bool[]? mask, Reft.InterventionPlan plan) =>
        Hidden(inference, tokens, batch, positions, mask, plan);

    /// <summary>
    /// Runs the decoder layers and the final norm; returns (batch * seqLen, dim). With a cache, K and V are appended
    /// to it and attention reads the whole cache.
    /// </summary>
    private Tensor Run(IForwardOps ops, ReadOnlySpan<int> tokens, int batch, int seqLen, int[] positions, KvCache? cache,
        bool[]? mask, Reft.InterventionPlan? plan)
    {
        var c = Config;
        int rows = batch * seqLen;
        var be = Backend;
        int start = cache?.Length ?? 0;
        var shape = new AttentionShape(batch, seqLen, start + seqLen, cache?.Capacity ?? seqLen, start,
            c.Heads, c.KvHeads, c.HeadSize);
        var x = ops.Input(rows, c.Dim);

        be.Embedding(embedding, tokens, x);
        for (int l = 0; l < layers.Length; l++)
        {
            var w = layers[l];
            var norm = ops.RmsNorm(x, w.AttentionNorm, c.NormEps, Slot.Norm);
            var q = ops.MatMul(norm, w.Wq, Slot.Q);
            var k = ops.MatMul(norm, w.Wk, Slot.K);
            var v = ops.MatMul(norm, w.Wv, Slot.V);
            ops.Done(norm);
            ops.Rope(q, ropeCos, ropeSin, positions, c.Heads);
            ops.Rope(k, ropeCos, ropeSin, positions, c.KvHeads);
            var (keys, values) = (k, v);
            if (cache is not null)
            {
                be.CopyRows(k, cache.Keys[l], batch, cache.Capacity, start);
                be.CopyRows(v, cache.Values[l], batch, cache.Capacity, start);
                (keys, values) = (cache.Keys[l], cache.Values[l]);
            }
            var attention = ops.Attention(q, keys, values, shape, mask);
            ops.Done(q);
            ops.Done(k);
            ops.Done(v);
            var projected = ops.MatMul(attention, w.Wo, Slot.Projected);
            ops.Done(attention);
            var (sum, ffnNorm) = ops.ResidualRmsNorm(x, projected, w.FfnNorm, c.NormEps, Slot.Norm);
            x = Advance(ops, x, sum);
            ops.Done(projected);
            var gate = ops.MatMul(ffnNorm, w.WGate, Slot.Gate);
            var up = ops.MatMul(ffnNorm, w.WUp, Slot.Up);
            ops.Done(ffnNorm);
            var hidden = ops.SwiGlu(gate, up);
            ops.Done(gate);
            ops.Done(up);
            x = Advance(ops, x, ops.ResidualLinear(x, hidden, w.WDown)); // the down projection adds into the residual stream
            ops.Done(hidden);

            if (plan?.At(l) is { Count: > 0 } edits)
            {
                x = Advance(ops, x, ops.Intervene(x, edits)); // pyreft's block_output: the layer's output, at the chosen rows
            }
        }
        var final = ops.RmsNorm(x, finalNorm, c.NormEps, Slot.Norm);
        ops.Done(x);
        return final;
    }

    // The residual stream moves on to `next`; the forward is done with the tensor before it, unless the op wrote
    // in place. A recorder keeps the tensors a backward reads, and frees the rest now: below the lowest intervened
    // layer nothing is recorded, so those layers' activations do not outlive the layer.
    private static Tensor Advance(IForwardOps ops, Tensor current, Tensor next)
    {
        if (!ReferenceEquals(current, next))
        {
            ops.Done(current);
        }
        return next;
    }

    private static int SequenceLength(int tokens, int batch)
    {
        if (batch <= 0 || tokens == 0 || tokens % batch != 0)
        {
            throw new ArgumentException($"{tokens} tokens do not form {batch} sequences of equal length");
        }
        return tokens / batch;
    }

    private string ComputeFingerprint()
    {
        var c = Config;
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        hash.AppendData(System.Text.Encoding.UTF8.GetBytes($"llama {c.Dim} {c.HiddenDim} {c.Layers} {c.Heads} {c.KvHeads} {c.VocabSize} {c.HeadSize}"));
        var values = new float[c.Dim];
        var rounded = new ushort[c.Dim];
        foreach (var norm in layers.SelectMany(w => new[] { w.AttentionNorm, w.FfnNorm }).Append(finalNorm))
        {
            Backend.Download(norm, values);
            for (int i = 0; i < values.Length; i++)
            {
                rounded[i] = DTypes.FloatToBF16(values[i]);
            }
            hash.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(rounded.AsSpan()));
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset())[..16];
    }

    // cos/sin of position * invFreq, in double before rounding so every backend starts from the same table.
    private static (Tensor Cos, Tensor Sin) RopeTables(LlamaConfig config, IBackend backend)
    {
        double[] inv = config.RopeInverseFrequencies();
        int half = inv.Length;
        var cos = new float[config.MaxSeqLen * half];
        var sin = new float[config.MaxSeqLen * half];
        for (int p = 0; p < config.MaxSeqLen; p++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = p * inv[i];
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        }
        return (backend.UploadFp32(cos, config.MaxSeqLen, half), backend.UploadFp32(sin, config.MaxSeqLen, half));
    }

    /// <inheritdoc />
    public void Dispose()
    {
        var all = new HashSet<Tensor> { embedding, finalNorm, classifier, ropeCos, ropeSin };
        foreach (var w in layers)
        {
            all.UnionWith([w.AttentionNorm, w.Wq, w.Wk, w.Wv, w.Wo, w.FfnNorm, w.WGate, w.WUp, w.WDown]);
        }
        foreach (var t in all)
        {
            t.Dispose();
        }
        inference.Dispose();
    }
}
