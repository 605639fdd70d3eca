using System.Text.Json;

namespace NativeReft.IO.Hf;

/// <summary>How a SentencePiece-style (Llama 2) tokenizer.json marks spaces before BPE.</summary>
/// <param name="Replacement">The character that stands for a space ('▁').</param>
/// <param name="Prefix">When a replacement is put before the text (SentencePiece's dummy prefix).</param>
/// <param name="PrefixEvenIfPresent">The legacy Prepend normalizer adds it even when the text starts with one.</param>
/// <param name="Split">Each replacement starts a new word, so no merge crosses it.</param>
internal sealed record MetaspaceRules(char Replacement, MetaspacePrefix Prefix, bool PrefixEvenIfPresent, bool Split);

/// <summary>Which text segments get the dummy prefix: none, the one at the start of the text, or every one.</summary>
internal enum MetaspacePrefix
{
    Never,
    First,
    Always,
}

/// <summary>
/// The parts of an HF <c>tokenizer.json</c> (the <c>tokenizers</c> library's serialization) that NativeReft uses,
/// for BPE models of two families: byte-level (Llama 3: a <c>ByteLevel</c> pre-tokenizer, usually after a regex
/// <c>Split</c>) and SentencePiece-style (Llama 2: a <c>Metaspace</c> pre-tokenizer, or the legacy
/// <c>Prepend("▁")</c> + <c>Replace(" ", "▁")</c> normalizer, with byte fallback). Anything else is rejected with a
/// <see cref="ModelFormatException"/> rather than tokenized differently from the reference.
/// </summary>
internal sealed class TokenizerJson
{
    /// <summary>GPT-2's pre-tokenizer regex, used by a ByteLevel pre-tokenizer with use_regex and no Split before it.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    private const string SentencePieceSpace = "▁";

    // Ids index dense arrays; no real vocabulary comes near this, a corrupt file might.
    private const int MaxTokenId = 1 << 24;

    public required Dictionary<string, int> Vocab { get; init; }

    /// <summary>Merges as "left right", highest priority first.</summary>
    public required List<string> Merges { get; init; }

    /// <summary>added_tokens by content (special or not: the reference matches both in the input text).</summary>
    public required Dictionary<string, int> AddedTokens { get; init; }

    public string? UnkToken { get; init; }

    public bool ByteFallback { get; init; }

    /// <summary>Byte-level: the regex that splits text into words (null: the whole text is one word).</summary>
    public string? SplitPattern { get; init; }

    /// <summary>Null for byte-level tokenizers.</summary>
    public MetaspaceRules? Metaspace { get; init; }

    public bool ByteLevel => Metaspace is null;

    public static TokenizerJson Load(string path)
    {
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, "file not found");
        }
        using (var document = JsonKeys.ParseFile(path))
        {
            var root = new JsonKeys(document.RootElement, path);
            var model = root.Object("model") ?? throw new ModelFormatException(path, "missing required key 'model'");
            string type = model.String("type") ?? "BPE";
            if (type != "BPE")
            {
                throw new ModelFormatException(path, $"tokenizer model type '{type}' is not supported (supported: BPE)");
            }
            if (model.String("continuing_subword_prefix") is { Length: > 0 } || model.String("end_of_word_suffix") is { Length: > 0 })
            {
                throw new ModelFormatException(path, "BPE continuing_subword_prefix / end_of_word_suffix are not supported");
            }
            var preTokenizers = Flatten(root, "pre_tokenizer", "pretokenizers");
            var normalizers = Flatten(root, "normalizer", "normalizers");
            bool byteLevel = preTokenizers.Any(p => p.Type == "ByteLevel");
            var vocab = model.IntMap("vocab") ?? throw new ModelFormatException(path, "missing required key 'model.vocab'");
            var added = ReadAddedTokens(document.RootElement, path);
            foreach (var (token, id) in vocab.Concat(added))
            {
                if (id < 0 || id >= MaxTokenId)
                {
                    throw new ModelFormatException(path, $"token '{token}' has id {id}, outside 0..{MaxTokenId - 1}");
                }
            }
            return new TokenizerJson
            {
                Vocab = vocab,
                Merges = ReadMerges(model, path),
                AddedTokens = added,
                UnkToken = model.String("unk_token"),
                ByteFallback = model.Bool("byte_fallback") ?? false,
                SplitPattern = byteLevel ? ReadSplitPattern(preTokenizers, normalizers, path) : null,
                Metaspace = byteLevel ? null : ReadMetaspace(preTokenizers, normalizers, path),
            };
        }
    }

    // A "Sequence" nests its parts under `listKey`; a single component is a list of one; null is an empty list.
    private static List<(string Type, JsonKeys Keys)> Flatten(JsonKeys root, string key, string listKey)
    {
        var result = new List<(string, JsonKeys)>();
        void Add(JsonKeys component)
        {
            string type = component.String("type") ?? throw new ModelFormatException(root.Source, $"a {key} has no 'type'");
            if (type == "Sequence" && component.TryGet(listKey, out var list) && list.ValueKind == JsonValueKind.Array)
            {
                foreach (var item in list.EnumerateArray())
                {
                    Add(new JsonKeys(item, root.Source, key + "."));
                }
                return;
            }
            result.Add((type, component));
        }

        if (root.Object(key) is { } top)
        {
            Add(top);
        }
        return result;
    }

    private static string? ReadSplitPattern(List<(string Type, JsonKeys Keys)> preTokenizers,
        List<(string Type, JsonKeys Keys)> normalizers, string path)
    {
        if (normalizers.Count > 0)
        {
            throw new ModelFormatException(path, $"normalizer '{normalizers[0].Type}' is not supported with a ByteLevel pre-tokenizer");
        }
        string? pattern = null;
        foreach (var (type, keys) in preTokenizers)
        {
            switch (type)
            {
                case "ByteLevel":
                    if (keys.Bool("add_prefix_space") == true)
                    {
                        throw new ModelFormatException(path, "ByteLevel add_prefix_space is not supported");
                    }
                    if (pattern is null && (keys.Bool("use_regex") ?? true))
                    {
                        pattern = Gpt2Pattern;
                    }
                    break;
                case "Split" when pattern is null:
                    if ((keys.String("behavior") ?? "Isolated") != "Isolated" || keys.Bool("invert") == true)
                    {
                        throw new ModelFormatException(path, "a Split pre-tokenizer must have behavior Isolated and invert false");
                    }
                    var p = keys.Object("pattern") ?? throw new ModelFormatException(path, "Split pre-tokenizer has no 'pattern'");
                    pattern = p.String("Regex") ?? System.Text.RegularExpressions.Regex.Escape(
                        p.String("String") ?? throw new ModelFormatException(path, "Split pattern needs 'Regex' or 'String'"));
                    break;
                default:
                    throw new ModelFormatException(path, $"pre-tokenizer '{type}' is not supported before ByteLevel (supported: one Split)");
            }
        }
        return pattern;
    }

    private static MetaspaceRules ReadMetaspace(List<(string Type, JsonKeys Keys)> preTokenizers,
        List<(string Type, JsonKeys Keys)> normalizers, string path)
    {
        if (preTokenizers is [("Metaspace", var m)] && normalizers.Count == 0)
        {
            string replacement = m.String("replacement") ?? SentencePieceSpace;
            if (replacement.Length != 1)
            {
                throw new ModelFormatException(path, $"Metaspace replacement '{replacement}' must be one character");
            }
            var prefix = m.String("prepend_scheme") switch
            {
                "always" => MetaspacePrefix.Always,
                "first" => MetaspacePrefix.First,
                "never" => MetaspacePrefix.Never,
                null => m.Bool("add_prefix_space") ?? true ? MetaspacePrefix.Always : MetaspacePrefix.Never,
                var other => throw new ModelFormatException(path, $"Metaspace prepend_scheme '{other}' is not supported"),
            };
            return new MetaspaceRules(replacement[0], prefix, PrefixEvenIfPresent: false, Split: m.Bool("split") ?? true);
        }
        // Llama 2's original tokenizer.json: no pre-tokenizer, the normalizer does SentencePiece's space handling.
        if (preTokenizers.Count == 0 && normalizers is [("Prepend", var prepend), ("Replace", var replace)]
            && prepend.String("prepend") == SentencePieceSpace
            && replace.Object("pattern")?.String("String") == " " && replace.String("content") == SentencePieceSpace)
        {
            return new MetaspaceRules(SentencePieceSpace[0], MetaspacePrefix.Always, PrefixEvenIfPresent: true, Split: false);
        }
        string Describe(List<(string Type, JsonKeys Keys)> parts) =>
            parts.Count == 0 ? "none" : string.Join(" + ", parts.Select(p => p.Type));
        throw new ModelFormatException(path,
            $"unsupported tokenizer (pre-tokenizer {Describe(preTokenizers)}, normalizer {Describe(normalizers)}): supported are ByteLevel (Llama 3), Metaspace, or the Prepend + Replace normalizer (Llama 2)");
    }

    // Merges are "a b" strings in older files and [a, b] pairs in newer ones; the library takes "a b".
    private static List<string> ReadMerges(JsonKeys model, string path)
    {
        if (!model.TryGet("merges", out var merges) || merges.ValueKind != JsonValueKind.Array)
        {
            throw new ModelFormatException(path, "missing required key 'model.merges' (an array)");
        }
        var result = new List<string>(merges.GetArrayLength());
        foreach (var merge in merges.EnumerateArray())
        {
            if (merge.ValueKind == JsonValueKind.String)
            {
                result.Add(merge.GetString()!);
            }
            else if (merge.ValueKind == JsonValueKind.Array && merge.GetArrayLength() == 2
                && merge[0].ValueKind == JsonValueKind.String && merge[1].ValueKind == JsonValueKind.String)
            {
                string left = merge[0].GetString()!, right = merge[1].GetString()!;
                if (left.Contains(' ', StringComparison.Ordinal) || right.Contains(' ', StringComparison.Ordinal))
                {
                    throw new ModelFormatException(path,
                        $"merge {merge.GetRawText()} has a token with a space, which Microsoft.ML.Tokenizers' \"a b\" merges cannot express");
                }
                result.Add(left + " " + right);
            }
            else
            {
                throw new ModelFormatException(path, $"a merge must be \"a b\" or [a, b], found {merge.GetRawText()}");
            }
        }
        return result;
    }

    private static Dictionary<string, int> ReadAddedTokens(JsonElement root, string path)
    {
        var added = new Dictionary<string, int>(StringComparer.Ordinal);
        if (!root.TryGetProperty("added_tokens", out var list) || list.ValueKind == JsonValueKind.Null)
        {
            return added;
        }
        if (list.ValueKind != JsonValueKind.Array)
        {
            throw new ModelFormatException(path, $"'added_tokens' must be an array, found {list.ValueKind}");
        }
        foreach (var item in list.EnumerateArray())
        {
            var token = new JsonKeys(item, path, "added_tokens.");
            added[token.String("content") ?? throw new ModelFormatException(path, "an added token has no 'content'")] =
                token.RequiredInt("id");
        }
        return added;
    }
}
