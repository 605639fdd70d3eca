using System.Text.Json.Nodes;
using NativeReft.Tokenizers;

namespace NativeReft.Tests.IO;

/// <summary>Tiny tokenizer.json files of both families, built here so every expected id is known.</summary>
[TestFixture]
public sealed class HfTokenizerTests
{
    private const string Llama3Pattern =
        @"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

    private string directory = "";

    [SetUp]
    public void SetUp() => directory = TestData.TempDirectory();

    [TearDown]
    public void TearDown() => Directory.Delete(directory, recursive: true);

    /// <summary>
    /// Llama 3 style: the 256 byte characters of GPT-2's alphabet (ids 0..255), merges up to "Hello" and "Ġworld"
    /// (256..264), then &lt;|begin_of_text|&gt; 265 and &lt;|end_of_text|&gt; 266.
    /// </summary>
    internal static JsonObject ByteLevelJson()
    {
        var vocab = new JsonObject();
        char[] alphabet = ByteAlphabet();
        for (int b = 0; b < 256; b++)
        {
            vocab[alphabet[b].ToString()] = b;
        }
        var merges = new JsonArray();
        foreach (var (left, right) in new[] { ("H", "e"), ("l", "l"), ("He", "ll"), ("Hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or"), ("l", "d"), ("Ġwor", "ld") })
        {
            merges.Add(new JsonArray(left, right)); // the newer [a, b] form
            vocab[left + right] = vocab.Count;
        }
        return new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(265, "<|begin_of_text|>"), Added(266, "<|end_of_text|>")),
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["pretokenizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Split", ["pattern"] = new JsonObject { ["Regex"] = Llama3Pattern }, ["behavior"] = "Isolated", ["invert"] = false },
                    new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = false }),
            },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel" },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["byte_fallback"] = false, ["ignore_merges"] = true,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
    }

    /// <summary>
    /// Llama 2 style: &lt;unk&gt; 0, &lt;s&gt; 1, &lt;/s&gt; 2, byte pieces &lt;0x00&gt;..&lt;0xFF&gt; 3..258, "▁" 259 and
    /// a few letters, merges up to "▁Hello" and "▁world". <paramref name="legacy"/>: the original Prepend + Replace
    /// normalizer; otherwise the newer Metaspace pre-tokenizer.
    /// </summary>
    internal static JsonObject SentencePieceStyleJson(bool legacy)
    {
        var vocab = new JsonObject { ["<unk>"] = 0, ["<s>"] = 1, ["</s>"] = 2 };
        for (int b = 0; b < 256; b++)
        {
            vocab[$"<0x{b:X2}>"] = vocab.Count;
        }
        foreach (string c in new[] { "▁", "H", "e", "l", "o", "w", "r", "d", "!", "," })
        {
            vocab[c] = vocab.Count;
        }
        var merges = new JsonArray();
        foreach (var (left, right) in new[] { ("l", "l"), ("▁", "H"), ("e", "ll"), ("▁H", "ell"), ("▁Hell", "o"), ("▁", "w"), ("o", "r"), ("▁w", "or"), ("▁wor", "l"), ("▁worl", "d") })
        {
            merges.Add($"{left} {right}"); // the older "a b" form
            vocab[left + right] = vocab.Count;
        }
        var json = new JsonObject
        {
            ["version"] = "1.0",
            ["added_tokens"] = new JsonArray(Added(0, "<unk>"), Added(1, "<s>"), Added(2, "</s>")),
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["unk_token"] = "<unk>", ["fuse_unk"] = true, ["byte_fallback"] = true,
                ["vocab"] = vocab, ["merges"] = merges,
            },
        };
        if (legacy)
        {
            json["normalizer"] = new JsonObject
            {
                ["type"] = "Sequence",
                ["normalizers"] = new JsonArray(
                    new JsonObject { ["type"] = "Prepend", ["prepend"] = "▁" },
                    new JsonObject { ["type"] = "Replace", ["pattern"] = new JsonObject { ["String"] = " " }, ["content"] = "▁" }),
            };
            json["pre_tokenizer"] = null;
        }
        else
        {
            json["normalizer"] = null;
            json["pre_tokenizer"] = new JsonObject { ["type"] = "Metaspace", ["replacement"] = "▁", ["prepend_scheme"] = "first", ["split"] = false };
        }
        return json;
    }

    internal static string Write(string directory, JsonObject json)
    {
        string path = Path.Combine(directory, "tokenizer.json");
        File.WriteAllText(path, json.ToJsonString());
        return path;
    }

    private static JsonObject Added(int id, string content) =>
        new() { ["id"] = id, ["content"] = content, ["special"] = true, ["normalized"] = false };

    // GPT-2's byte-to-character map: printable bytes stand for themselves, the rest move to U+0100 onwards.
    private static char[] ByteAlphabet()
    {
        var map = new char[256];
        int shifted = 0;
        for (int b = 0; b < 256; b++)
        {
            bool printable = b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;
            map[b] = printable ? (char)b : (char)(256 + shifted++);
        }
        return map;
    }

    [Test]
    public void Byte_level_tokenizer_merges_words_and_counts_added_tokens_in_its_vocabulary()
    {
        var tokenizer = HfTokenizer.Load(Write(directory, ByteLevelJson()));

        Assert.That(tokenizer.IsByteLevel, Is.True);
        Assert.That((tokenizer.VocabSize, tokenizer.BosId, tokenizer.EosId), Is.EqualTo((267, 265, 266)));
        Assert.That(tokenizer.Encode("Hello world", addBos: false, addEos: false), Is.EqualTo(new[] { 259, 264 }));
        Assert.That(tokenizer.Encode("Hello world", addBos: true, addEos: true), Is.EqualTo(new[] { 265, 259, 264, 266 }));
        Assert.That(tokenizer.Encode("<|begin_of_text|>Hello", addBos: false, addEos: false), Is.EqualTo(new[] { 265, 259 }));
    }

    [TestCase("Hello world")]
    [TestCase("Hello,  world!\n\tnaïve café ☃ 12345")]
    public void Byte_level_tokenizer_decodes_what_it_encodes(string text)
    {
        var tokenizer = HfTokenizer.Load(Write(directory, ByteLevelJson()));

        Assert.That(tokenizer.Decode(tokenizer.Encode(text, addBos: true, addEos: true)), Is.EqualTo(text));
    }

    [TestCase(true)]
    [TestCase(false)]
    public void SentencePiece_style_tokenizer_merges_words_and_falls_back_to_bytes(bool legacy)
    {
        var tokenizer = HfTokenizer.Load(Write(directory, SentencePieceStyleJson(legacy)));

        Assert.That(tokenizer.IsByteLevel, Is.False);
        Assert.That((tokenizer.VocabSize, tokenizer.BosId, tokenizer.EosId), Is.EqualTo((279, 1, 2)));
        int hello = 273, world = 278, bang = 267;
        Assert.That(tokenizer.Encode("Hello world!", addBos: true, addEos: false), Is.EqualTo(new[] { 1, hello, world, bang }));
        // 'é' is not a piece: its UTF-8 bytes C3 A9 become byte pieces (id = 3 + byte).
        Assert.That(tokenizer.Encode("Hello é", addBos: false, addEos: false), Is.EqualTo(new[] { hello, 259, 3 + 0xC3, 3 + 0xA9 }));
        Assert.That(tokenizer.Decode([world]), Is.EqualTo("world"), "the first piece's dummy-prefix space is dropped");
    }

    [TestCase(true, "Hello world!")]
    [TestCase(false, "Hello world!")]
    [TestCase(true, "Hello,  wörld! ☃ Hello")]
    [TestCase(false, "Hello,  wörld! ☃ Hello")]
    public void SentencePiece_style_tokenizer_decodes_what_it_encodes(bool legacy, string text)
    {
        var tokenizer = HfTokenizer.Load(Write(directory, SentencePieceStyleJson(legacy)));

        Assert.That(tokenizer.Decode(tokenizer.Encode(text, addBos: true, addEos: true)), Is.EqualTo(text));
        Assert.That(tokenizer.Decode(tokenizer.Encode(text, addBos: false, addEos: false)), Is.EqualTo(text));
    }

    [Test]
    public void Vocabulary_size_counts_added_tokens_beyond_the_model_vocabulary()
    {
        var json = SentencePieceStyleJson(legacy: true);
        json["added_tokens"]!.AsArray().Add(Added(300, "<pad>"));

        var tokenizer = HfTokenizer.Load(Write(directory, json), bosId: 1, eosId: 2);

        Assert.That(tokenizer.VocabSize, Is.EqualTo(301));
        Assert.That(() => tokenizer.Decode([290]), Throws.InstanceOf<ArgumentOutOfRangeException>(), "no token has id 290");
    }

    [Test]
    public void Given_BOS_and_EOS_ids_win_over_the_token_names()
    {
        var tokenizer = HfTokenizer.Load(Write(directory, ByteLevelJson()), bosId: 7, eosId: 8);

        Assert.That(tokenizer.Encode("Hello", addBos: true, addEos: true), Is.EqualTo(new[] { 7, 259, 8 }));
    }

    [Test]
    public void A_unigram_tokenizer_is_rejected()
    {
        var json = SentencePieceStyleJson(legacy: true);
        json["model"]!["type"] = "Unigram";
        string path = Write(directory, json);

        var e = Assert.Throws<ModelFormatException>(() => HfTokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("tokenizer model type 'Unigram' is not supported"));
    }

    [Test]
    public void A_whitespace_pre_tokenizer_is_rejected()
    {
        var json = SentencePieceStyleJson(legacy: false);
        json["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" };
        string path = Write(directory, json);

        var e = Assert.Throws<ModelFormatException>(() => HfTokenizer.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("unsupported tokenizer (pre-tokenizer Whitespace"));
    }

    [Test]
    public void SentencePiece_model_file_loads_through_the_library()
    {
        var tokenizer = HfTokenizer.LoadSentencePiece(TestData.Stories260K("tok512.model"));
        const string text = "Once upon a time, Lily saw a big ☃.";

        int[] ids = tokenizer.Encode(text, addBos: true, addEos: false);

        Assert.That((tokenizer.VocabSize, tokenizer.BosId, tokenizer.EosId), Is.EqualTo((512, 1, 2)));
        Assert.That(ids[0], Is.EqualTo(1));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(text));
    }
}
