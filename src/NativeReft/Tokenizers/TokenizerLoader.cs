namespace NativeReft.Tokenizers;

/// <summary>Opens a tokenizer file by its kind: llama2.c <c>.bin</c>, SentencePiece <c>.model</c> or HF <c>tokenizer.json</c>.</summary>
public static class TokenizerLoader
{
    /// <summary>Loads the tokenizer at <paramref name="path"/>; BOS/EOS default to the model's when the file has none.</summary>
    public static ITokenizer Load(string path, int bosId = 1, int eosId = 2)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, "tokenizer file not found");
        }
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".json" => HfTokenizer.Load(path, bosId, eosId),
            ".model" => HfTokenizer.LoadSentencePiece(path, bosId, eosId),
            _ => Llama2cTokenizerLoader.Load(path),
        };
    }
}
