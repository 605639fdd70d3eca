using Microsoft.ML.Tokenizers;

namespace NativeReft.Tokenizers;

/// <summary>
/// A SentencePiece BPE model file (<c>tokenizer.model</c> of Llama 1/2 HF directories) read by
/// Microsoft.ML.Tokenizers' <see cref="LlamaTokenizer"/>: dummy-prefix space, byte fallback and decoding as
/// SentencePiece does them. BOS/EOS are added here, with the model config's ids.
/// </summary>
public sealed class SentencePieceModelTokenizer : ITokenizer
{
    private readonly LlamaTokenizer inner;

    private SentencePieceModelTokenizer(LlamaTokenizer inner, int bosId, int eosId)
    {
        this.inner = inner;
        BosId = bosId;
        EosId = eosId;
        VocabSize = inner.Vocabulary.Values.Max() + 1;
    }

    /// <inheritdoc />
    public int VocabSize { get; }

    /// <inheritdoc />
    public int BosId { get; }

    /// <inheritdoc />
    public int EosId { get; }

    /// <summary>
    /// Reads <paramref name="path"/>; BOS/EOS default to the ids the model file declares. A file the library cannot
    /// read is a <see cref="ModelFormatException"/>.
    /// </summary>
    public static SentencePieceModelTokenizer Load(string path, int? bosId = null, int? eosId = null)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, "file not found");
        }
        LlamaTokenizer inner;
        try
        {
            using var stream = File.OpenRead(path);
            inner = LlamaTokenizer.Create(stream, addBeginOfSentence: false, addEndOfSentence: false);
        }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        {
            throw new ModelFormatException(path, $"not a readable SentencePiece BPE model ({e.Message})", e);
        }
        return new SentencePieceModelTokenizer(inner, bosId ?? inner.BeginningOfSentenceId, eosId ?? inner.EndOfSentenceId);
    }

    /// <inheritdoc />
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = inner.EncodeToIds(text, addBeginningOfSentence: false, addEndOfSentence: false,
            considerPreTokenization: true, considerNormalization: true);
        var result = new List<int>(ids.Count + 2);
        if (addBos)
        {
            result.Add(BosId);
        }
        result.AddRange(ids);
        if (addEos)
        {
            result.Add(EosId);
        }
        return [.. result];
    }

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var kept = new List<int>(tokens.Length);
        foreach (int t in tokens)
        {
            if (t < 0 || t >= VocabSize)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"token id outside the vocabulary (0..{VocabSize - 1})");
            }
            if (t != BosId && t != EosId)
            {
                kept.Add(t);
            }
        }
        // Without special tokens, SentencePiece drops the dummy-prefix space of the first piece itself.
        return inner.Decode(kept, considerSpecialTokens: false);
    }
}
