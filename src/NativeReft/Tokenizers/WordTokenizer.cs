namespace NativeReft.Tokenizers;

/// <summary>
/// Whole words as tokens, split on spaces: the demo model's vocabulary, where each piece is a word with its
/// leading space. Ids 0..2 are &lt;unk&gt;, &lt;s&gt;, &lt;/s&gt;; an unknown word is &lt;unk&gt;.
/// </summary>
public sealed class WordTokenizer : ITokenizer
{
    private readonly IReadOnlyList<string> words;
    private readonly Dictionary<string, int> ids = new(StringComparer.Ordinal);

    /// <summary>A tokenizer whose token 3 + i is <paramref name="words"/>[i] (the first of duplicates wins on encode).</summary>
    public WordTokenizer(IReadOnlyList<string> words)
    {
        this.words = words ?? throw new ArgumentNullException(nameof(words));
        for (int i = 0; i < words.Count; i++)
        {
            ids.TryAdd(words[i], 3 + i);
        }
    }

    /// <inheritdoc />
    public int VocabSize => 3 + words.Count;

    /// <inheritdoc />
    public int BosId => 1;

    /// <inheritdoc />
    public int EosId => 2;

    /// <inheritdoc />
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<int>();
        if (addBos)
        {
            tokens.Add(BosId);
        }
        tokens.AddRange(text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => ids.GetValueOrDefault(w, 0)));
        if (addEos)
        {
            tokens.Add(EosId);
        }
        return [.. tokens];
    }

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var text = new List<string>();
        foreach (int t in tokens)
        {
            if (t >= 3 && t < VocabSize)
            {
                text.Add(words[t - 3]);
            }
            else if (t == 0)
            {
                text.Add("<unk>");
            }
        }
        return string.Join(' ', text);
    }
}
