namespace NativeReft.Model;

/// <summary>
/// The shape and numerics of a LLaMA-family decoder, whatever file it came from.
/// Weight layout follows HF transformers: Linear weights are (out, in) and RoPE rotates the two halves of each
/// head (<c>rotate_half</c>); loaders of llama2.c and GGUF files, which interleave the pairs, permute Q/K rows.
/// </summary>
public sealed record LlamaConfig
{
    /// <summary>Model (residual stream) width.</summary>
    public required int Dim { get; init; }

    /// <summary>SwiGLU hidden width.</summary>
    public required int HiddenDim { get; init; }

    /// <summary>Number of decoder layers.</summary>
    public required int Layers { get; init; }

    /// <summary>Query heads.</summary>
    public required int Heads { get; init; }

    /// <summary>Key/value heads (GQA: Heads is a multiple of KvHeads).</summary>
    public required int KvHeads { get; init; }

    /// <summary>Vocabulary size.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Per-head width; Dim / Heads unless the checkpoint says otherwise.</summary>
    public int HeadDim { get; init; }

    /// <summary>Longest sequence the model was trained for (the KV cache's default length).</summary>
    public int MaxSeqLen { get; init; } = 2048;

    /// <summary>RMSNorm epsilon.</summary>
    public float NormEps { get; init; } = 1e-5f;

    /// <summary>RoPE base.</summary>
    public double RopeTheta { get; init; } = 10000;

    /// <summary>Optional RoPE frequency scaling.</summary>
    public RopeScaling? RopeScaling { get; init; }

    /// <summary>The classifier shares the token embedding.</summary>
    public bool TiedEmbeddings { get; init; } = true;

    /// <summary>Beginning-of-sequence token id.</summary>
    public int BosId { get; init; } = 1;

    /// <summary>End-of-sequence token id.</summary>
    public int EosId { get; init; } = 2;

    /// <summary>Per-head width actually used.</summary>
    public int HeadSize => HeadDim > 0 ? HeadDim : Dim / Heads;

    /// <summary>Width of the K and V projections.</summary>
    public int KvDim => KvHeads * HeadSize;

    /// <summary>Width of the Q projection.</summary>
    public int QDim => Heads * HeadSize;

    /// <summary>Throws a <see cref="ModelFormatException"/> naming <paramref name="source"/> if the shape is impossible.</summary>
    public void Validate(string source)
    {
        void Require(bool ok, string problem)
        {
            if (!ok)
            {
                throw new ModelFormatException(source, problem);
            }
        }

        Require(Dim > 0 && HiddenDim > 0 && Layers > 0 && Heads > 0 && KvHeads > 0 && VocabSize > 0,
            $"every dimension must be positive (dim {Dim}, hidden {HiddenDim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, vocab {VocabSize})");
        Require(Heads % KvHeads == 0, $"heads ({Heads}) must be a multiple of kv heads ({KvHeads})");
        Require(HeadDim > 0 || Dim % Heads == 0, $"dim ({Dim}) must be a multiple of heads ({Heads})");
        Require(HeadSize % 2 == 0, $"head size ({HeadSize}) must be even for RoPE");
        Require(MaxSeqLen > 0, $"max sequence length must be positive ({MaxSeqLen})");
        Require(NormEps > 0 && float.IsFinite(NormEps), $"rms norm eps must be positive ({NormEps})");
        Require(RopeTheta > 0, $"rope theta must be positive ({RopeTheta})");
        Require(BosId >= 0 && BosId < VocabSize && EosId >= 0 && EosId < VocabSize,
            $"BOS ({BosId}) and EOS ({EosId}) must be token ids below the vocabulary size ({VocabSize})");
        if (RopeScaling is { } s)
        {
            Require(s.Type is "linear" or "llama3",
                $"rope_scaling type '{s.Type}' is not supported (supported: linear, llama3)");
            Require(s.Factor > 0, $"rope_scaling factor must be positive ({s.Factor})");
        }
    }

    /// <summary>
    /// RoPE inverse frequencies, one per rotated pair: theta^(-2i/headSize), then rescaled as
    /// <see cref="RopeScaling"/> says (the formulas of HF's <c>_compute_llama3_parameters</c>).
    /// </summary>
    public double[] RopeInverseFrequencies()
    {
        int half = HeadSize / 2;
        var inv = new double[half];
        for (int i = 0; i < half; i++)
        {
            inv[i] = 1.0 / Math.Pow(RopeTheta, 2.0 * i / HeadSize);
        }
        if (RopeScaling is { Type: "linear" } linear)
        {
            for (int i = 0; i < half; i++)
            {
                inv[i] /= linear.Factor;
            }
        }
        else if (RopeScaling is { Type: "llama3" } s)
        {
            double lowWavelen = s.OriginalMaxPositions / s.LowFreqFactor;
            double highWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
            for (int i = 0; i < half; i++)
            {
                double wavelen = 2 * Math.PI / inv[i];
                if (wavelen > lowWavelen)
                {
                    inv[i] /= s.Factor;
                }
                else if (wavelen >= highWavelen)
                {
                    double smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
                    inv[i] = (1 - smooth) * inv[i] / s.Factor + smooth * inv[i];
                }
            }
        }
        return inv;
    }
}
