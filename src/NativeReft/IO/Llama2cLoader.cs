using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.IO;

/// <summary>
/// Loads llama2.c's legacy <c>.bin</c> checkpoint: a header of 7 int32 (dim, hidden_dim, n_layers, n_heads,
/// n_kv_heads, vocab_size, seq_len; a negative vocab_size means the classifier is stored, untied), then float32
/// weights in run.c's order. Q and K rows interleave RoPE pairs, so they are permuted to HF layout on read.
/// </summary>
public static class Llama2cLoader
{
    private const int HeaderBytes = 7 * sizeof(int);

    /// <summary>Maps <paramref name="path"/> and describes its weights; nothing is copied yet.</summary>
    public static Checkpoint Load(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            if (file.Length < HeaderBytes)
            {
                throw new ModelFormatException(path, $"too short for a llama2.c header ({file.Length} bytes, need {HeaderBytes})");
            }
            var header = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(file.Bytes(0, HeaderBytes));
            int vocab = header[5];
            var config = new LlamaConfig
            {
                Dim = header[0],
                HiddenDim = header[1],
                Layers = header[2],
                Heads = header[3],
                KvHeads = header[4],
                VocabSize = Math.Abs(vocab),
                MaxSeqLen = header[6],
                TiedEmbeddings = vocab > 0,
                NormEps = 1e-5f,
                RopeTheta = 10000,
                BosId = 1,
                EosId = 2,
            };
            config.Validate(path);
            var weights = Describe(config, file);
            return new Checkpoint(path, config, weights, [file]);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static Dictionary<string, WeightTensor> Describe(LlamaConfig c, MappedFile file)
    {
        var weights = new Dictionary<string, WeightTensor>();
        long offset = HeaderBytes;
        int headSize = c.HeadSize;
        long expected = HeaderBytes + 4L * (
            (long)c.VocabSize * c.Dim
            + c.Layers * (2L * c.Dim + 2L * c.Dim * c.QDim + 2L * c.Dim * c.KvDim + 3L * c.Dim * c.HiddenDim)
            + c.Dim
            + (long)c.MaxSeqLen * headSize // freq_cis_real and freq_cis_imag, (seq_len, head_size / 2) each
            + (c.TiedEmbeddings ? 0 : (long)c.VocabSize * c.Dim));
        if (file.Length != expected)
        {
            throw new ModelFormatException(file.Path,
                $"is {file.Length} bytes but its header (dim {c.Dim}, hidden {c.HiddenDim}, layers {c.Layers}, heads {c.Heads}/{c.KvHeads}, vocab {c.VocabSize}, seq_len {c.MaxSeqLen}) implies {expected}: the file is truncated or not a llama2.c checkpoint");
        }

        void Take(string name, int[] shape, int ropeHeads = 0)
        {
            var w = new WeightTensor(name, shape, DType.F32, file, offset, ropeHeads);
            weights[name] = w;
            offset += w.ByteLength;
        }

        // Each run.c weight block stacks all layers: (layer, rows, cols).
        void TakeLayers(Func<int, string> name, int rows, int cols, int ropeHeads = 0)
        {
            for (int l = 0; l < c.Layers; l++)
            {
                Take(name(l), cols == 0 ? [rows] : [rows, cols], ropeHeads);
            }
        }

        Take(WeightNames.Embedding, [c.VocabSize, c.Dim]);
        TakeLayers(WeightNames.AttentionNorm, c.Dim, 0);
        TakeLayers(WeightNames.Wq, c.QDim, c.Dim, c.Heads);
        TakeLayers(WeightNames.Wk, c.KvDim, c.Dim, c.KvHeads);
        TakeLayers(WeightNames.Wv, c.KvDim, c.Dim);
        TakeLayers(WeightNames.Wo, c.Dim, c.QDim);
        TakeLayers(WeightNames.FfnNorm, c.Dim, 0);
        TakeLayers(WeightNames.WGate, c.HiddenDim, c.Dim);
        TakeLayers(WeightNames.WDown, c.Dim, c.HiddenDim);
        TakeLayers(WeightNames.WUp, c.HiddenDim, c.Dim);
        Take(WeightNames.FinalNorm, [c.Dim]);
        offset += 4L * c.MaxSeqLen * headSize; // skip the legacy RoPE tables: we compute ours from theta
        if (!c.TiedEmbeddings)
        {
            Take(WeightNames.Classifier, [c.VocabSize, c.Dim]);
        }
        return weights;
    }
}
