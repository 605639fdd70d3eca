using System.Text;

namespace NativeReft.Tokenizers;

/// <summary>
/// Reads llama2.c's <c>tokenizer.bin</c>: int32 max_token_length, then per token a float32 score, an int32 byte
/// length and the piece's bytes. The vocabulary size is not stored: it is whatever the file holds.
/// </summary>
public static class Llama2cTokenizerLoader
{
    /// <summary>Loads <paramref name="path"/>; BOS is 1 and EOS 2 as in llama2.c.</summary>
    public static ScoredBpeTokenizer Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, "tokenizer file not found");
        }
        byte[] data = File.ReadAllBytes(path);
        if (data.Length < 4)
        {
            throw new ModelFormatException(path, "too short for a llama2.c tokenizer (no max_token_length header)");
        }
        int maxTokenLength = BitConverter.ToInt32(data, 0);
        if (maxTokenLength <= 0 || maxTokenLength > 1024)
        {
            throw new ModelFormatException(path, $"max_token_length {maxTokenLength} is not plausible: not a llama2.c tokenizer.bin");
        }
        var pieces = new List<string>();
        var scores = new List<float>();
        int offset = 4;
        while (offset < data.Length)
        {
            if (data.Length - offset < 8)
            {
                throw new ModelFormatException(path, $"truncated after {pieces.Count} tokens (a score and length need 8 bytes, {data.Length - offset} left)");
            }
            float score = BitConverter.ToSingle(data, offset);
            int length = BitConverter.ToInt32(data, offset + 4);
            offset += 8;
            if (length < 0 || length > maxTokenLength || length > data.Length - offset)
            {
                throw new ModelFormatException(path, $"token {pieces.Count} has length {length}, outside 0..{Math.Min(maxTokenLength, data.Length - offset)}: the file is truncated or corrupt");
            }
            pieces.Add(Encoding.UTF8.GetString(data, offset, length));
            scores.Add(score);
            offset += length;
        }
        if (pieces.Count < 3)
        {
            throw new ModelFormatException(path, $"holds {pieces.Count} tokens; a llama2.c tokenizer has at least <unk>, <s>, </s>");
        }
        return new ScoredBpeTokenizer(pieces, scores, bosId: 1, eosId: 2);
    }
}
