using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;
using NativeReft.IO.Hf;

namespace NativeReft.Tokenizers;

/// <summary>
/// An HF <c>tokenizer.json</c> BPE tokenizer, with Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/> doing the
/// merges. Two families:
/// <list type="bullet">
/// <item>Byte-level (Llama 3): the pre-tokenizer regex splits the text, bytes map to GPT-2's printable alphabet,
/// added tokens in the text encode to their ids; the library encodes and decodes.</item>
/// <item>SentencePiece-style (Llama 2: Metaspace pre-tokenizer or Prepend/Replace normalizer, byte fallback): spaces
/// become '▁' and the dummy prefix is added here; characters missing from the vocabulary become their UTF-8 byte
/// pieces <c>&lt;0xXX&gt;</c> here (the library has no byte fallback), and the library merges the runs between
/// them; decoding maps pieces back itself (▁ to space, byte pieces to raw bytes, then UTF-8).</item>
/// </list>
/// Limitations against the reference <c>tokenizers</c>: BPE dropout and <c>ignore_merges</c> (Llama 3 emits a
/// pre-tokenized word that is itself in the vocabulary without merging; merging almost always reaches the same
/// token) are not applied; added tokens are matched literally in the raw text, ignoring their lstrip/rstrip and
/// normalized flags; an unknown character without byte pieces becomes one unk token each (no fuse_unk).
/// </summary>
public sealed class HfTokenizer : ITokenizer
{
    private static readonly string[] BosNames = ["<s>", "<|begin_of_text|>", "<bos>"];
    private static readonly string[] EosNames = ["</s>", "<|end_of_text|>", "<eos>", "<|endoftext|>"];

    private readonly BpeTokenizer bpe;
    private readonly MetaspaceRules? metaspace;
    private readonly Dictionary<string, int> vocab;
    private readonly string?[] pieces;
    private readonly KeyValuePair<string, int>[] addedLongestFirst;
    private readonly int[] byteIds = new int[256];
    private readonly bool byteFallback;
    private readonly int unkId = -1;

    private HfTokenizer(TokenizerJson json, BpeTokenizer bpe, int bosId, int eosId)
    {
        this.bpe = bpe;
        metaspace = json.Metaspace;
        vocab = json.Vocab;
        byteFallback = json.ByteFallback;
        BosId = bosId;
        EosId = eosId;
        VocabSize = Math.Max(vocab.Values.DefaultIfEmpty(-1).Max(), json.AddedTokens.Values.DefaultIfEmpty(-1).Max()) + 1;
        pieces = new string?[VocabSize];
        Array.Fill(byteIds, -1);
        foreach (var (piece, id) in vocab.Concat(json.AddedTokens))
        {
            pieces[id] = piece;
            if (TryParseBytePiece(piece, out byte b))
            {
                byteIds[b] = id;
            }
        }
        addedLongestFirst = [.. json.AddedTokens.OrderByDescending(t => t.Key.Length)];
        if (json.UnkToken is { } unk && (vocab.TryGetValue(unk, out int u) || json.AddedTokens.TryGetValue(unk, out u)))
        {
            unkId = u;
        }
    }

    /// <summary>One more than the largest id of the vocabulary and the added tokens.</summary>
    public int VocabSize { get; }

    /// <inheritdoc />
    public int BosId { get; }

    /// <inheritdoc />
    public int EosId { get; }

    /// <summary>True for byte-level (Llama 3 style) tokenizers, false for SentencePiece-style ones.</summary>
    public bool IsByteLevel => metaspace is null;

    /// <summary>
    /// Reads <paramref name="path"/>. BOS/EOS ids are the given ones (the model config's) or else those of the
    /// tokens named <c>&lt;s&gt;</c>/<c>&lt;/s&gt;</c>, <c>&lt;|begin_of_text|&gt;</c>/<c>&lt;|end_of_text|&gt;</c>,
    /// <c>&lt;bos&gt;</c>/<c>&lt;eos&gt;</c>. Every problem with the file is a <see cref="ModelFormatException"/>.
    /// </summary>
    public static HfTokenizer Load(string path, int? bosId = null, int? eosId = null)
    {
        var json = TokenizerJson.Load(path);
        int Find(string[] names, string what)
        {
            foreach (string name in names)
            {
                if (json.AddedTokens.TryGetValue(name, out int id) || json.Vocab.TryGetValue(name, out id))
                {
                    return id;
                }
            }
            throw new ModelFormatException(path, $"no {what} token ({string.Join(", ", names)}) found: pass its id from the model's config");
        }

        int bos = bosId ?? Find(BosNames, "beginning-of-sequence");
        int eos = eosId ?? Find(EosNames, "end-of-sequence");
        BpeTokenizer bpe;
        try
        {
            var special = json.AddedTokens.Count > 0 ? json.AddedTokens : null;
            bpe = BpeTokenizer.Create(new BpeOptions(json.Vocab)
            {
                Merges = json.Merges,
                ByteLevel = json.ByteLevel,
                // SentencePiece-style text is split and normalized here, so the library gets neither.
                SpecialTokens = json.ByteLevel ? special : null,
                PreTokenizer = json.ByteLevel ? new RegexPreTokenizer(new Regex(json.SplitPattern ?? @"[\s\S]+"), special) : null,
            });
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new ModelFormatException(path, $"Microsoft.ML.Tokenizers cannot build this BPE tokenizer ({e.Message})", e);
        }
        var tokenizer = new HfTokenizer(json, bpe, bos, eos);
        if (bos < 0 || bos >= tokenizer.VocabSize || eos < 0 || eos >= tokenizer.VocabSize)
        {
            throw new ModelFormatException(path, $"BOS ({bos}) and EOS ({eos}) must be ids below the vocabulary size ({tokenizer.VocabSize})");
        }
        return tokenizer;
    }

    /// <summary>
    /// Reads the other tokenizer file of HF directories, a SentencePiece <c>tokenizer.model</c> (Llama 1/2); see
    /// <see cref="SentencePieceModelTokenizer"/>.
    /// </summary>
    public static SentencePieceModelTokenizer LoadSentencePiece(string path, int? bosId = null, int? eosId = null) =>
        SentencePieceModelTokenizer.Load(path, bosId, eosId);

    /// <inheritdoc />
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = new List<int>(text.Length / 2 + 2);
        if (addBos)
        {
            ids.Add(BosId);
        }
        if (metaspace is null)
        {
            ids.AddRange(bpe.EncodeToIds(text));
        }
        else
        {
            EncodeSentencePieceStyle(text, metaspace, ids);
        }
        if (addEos)
        {
            ids.Add(EosId);
        }
        return [.. ids];
    }

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var kept = new List<int>(tokens.Length);
        foreach (int t in tokens)
        {
            if (t < 0 || t >= VocabSize || pieces[t] is null)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), t, $"no token has this id (vocabulary 0..{VocabSize - 1})");
            }
            kept.Add(t);
        }
        if (metaspace is null)
        {
            kept.RemoveAll(t => t == BosId || t == EosId);
            return bpe.Decode(kept);
        }
        return DecodeSentencePieceStyle(kept, metaspace);
    }

    // Added tokens are cut out of the raw text first; each piece between them is normalized on its own, as the
    // reference does (so the legacy Prepend normalizer puts '▁' after every special token too).
    private void EncodeSentencePieceStyle(string text, MetaspaceRules rules, List<int> ids)
    {
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            foreach (var (content, id) in addedLongestFirst)
            {
                if (content.Length > 0 && string.CompareOrdinal(text, i, content, 0, content.Length) == 0)
                {
                    EncodeNormalized(Normalize(text[start..i], start == 0, rules), rules, ids);
                    ids.Add(id);
                    start = i + content.Length;
                    i = start - 1;
                    break;
                }
            }
        }
        EncodeNormalized(Normalize(text[start..], start == 0, rules), rules, ids);
    }

    private static string Normalize(string segment, bool atStart, MetaspaceRules rules)
    {
        string s = segment.Replace(' ', rules.Replacement);
        bool prefix = rules.Prefix == MetaspacePrefix.Always || (rules.Prefix == MetaspacePrefix.First && atStart);
        return prefix && s.Length > 0 && (rules.PrefixEvenIfPresent || s[0] != rules.Replacement) ? rules.Replacement + s : s;
    }

    // Runs of characters the vocabulary knows go to the library's BPE; an unknown character becomes its byte pieces.
    // No merge can cross an unknown character, so splitting there changes nothing but adds the byte fallback.
    private void EncodeNormalized(string text, MetaspaceRules rules, List<int> ids)
    {
        var run = new StringBuilder();
        void Flush()
        {
            if (run.Length > 0)
            {
                ids.AddRange(bpe.EncodeToIds(run.ToString(), considerPreTokenization: false, considerNormalization: false));
                run.Clear();
            }
        }

        Span<byte> utf8 = stackalloc byte[4];
        foreach (var rune in text.EnumerateRunes())
        {
            if (rules.Split && rune.Value == rules.Replacement)
            {
                Flush();
            }
            string piece = rune.ToString();
            if (vocab.ContainsKey(piece))
            {
                run.Append(piece);
                continue;
            }
            Flush();
            int length = rune.EncodeToUtf8(utf8);
            if (byteFallback && utf8[..length].ToArray().All(b => byteIds[b] >= 0))
            {
                foreach (byte b in utf8[..length])
                {
                    ids.Add(byteIds[b]);
                }
            }
            else if (unkId >= 0)
            {
                ids.Add(unkId);
            }
            else
            {
                throw new ArgumentException($"character U+{rune.Value:X4} is not in the vocabulary and the tokenizer has neither byte pieces nor an unk token", nameof(text));
            }
        }
        Flush();
    }

    private string DecodeSentencePieceStyle(List<int> tokens, MetaspaceRules rules)
    {
        var bytes = new List<byte>(tokens.Count * 4);
        int previous = -1;
        foreach (int token in tokens)
        {
            if (token == BosId || token == EosId)
            {
                previous = token;
                continue;
            }
            string piece = pieces[token]!;
            if (TryParseBytePiece(piece, out byte raw))
            {
                bytes.Add(raw);
            }
            else
            {
                string text = piece.Replace(rules.Replacement, ' ');
                // The dummy prefix of the first piece (at the start, or after BOS) is not part of the text.
                if (rules.Prefix != MetaspacePrefix.Never && (previous == -1 || previous == BosId) && text.StartsWith(' '))
                {
                    text = text[1..];
                }
                bytes.AddRange(Encoding.UTF8.GetBytes(text));
            }
            previous = token;
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }
}
