namespace NativeReft.Tokenizers;

/// <summary>Text to token ids and back, whatever the tokenizer format.</summary>
public interface ITokenizer
{
    /// <summary>Number of ids the tokenizer can produce; must equal the model's vocabulary.</summary>
    int VocabSize { get; }

    /// <summary>Beginning-of-sequence id.</summary>
    int BosId { get; }

    /// <summary>End-of-sequence id.</summary>
    int EosId { get; }

    /// <summary>Tokenizes <paramref name="text"/>, optionally adding BOS before and EOS after.</summary>
    int[] Encode(string text, bool addBos, bool addEos);

    /// <summary>
    /// Text of a whole sequence. Implementations drop BOS/EOS and (SentencePiece style) the space that starts the
    /// first piece after BOS, so streaming by decoding prefixes prints exactly what llama2.c prints.
    /// </summary>
    string Decode(ReadOnlySpan<int> tokens);
}
