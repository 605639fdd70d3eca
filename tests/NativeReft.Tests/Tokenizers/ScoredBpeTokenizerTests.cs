using NativeReft.Tokenizers;

namespace NativeReft.Tests.Tokenizers;

public sealed class ScoredBpeTokenizerTests
{
    [Test]
    public void Tok512_loads_with_its_special_tokens()
    {
        var tokenizer = Llama2cTokenizerLoader.Load(TestData.Stories260K("tok512.bin"));
        Assert.That(tokenizer.VocabSize, Is.EqualTo(512));
        Assert.That((tokenizer.BosId, tokenizer.EosId), Is.EqualTo((1, 2)));
    }

    [TestCase("Once upon a time")]
    [TestCase("Lily's mom said, \"Let's go!\"")]
    [TestCase("naïve café ☃")] // characters outside the vocabulary go through byte pieces
    public void Encode_then_decode_gives_back_the_text(string text)
    {
        var tokenizer = Llama2cTokenizerLoader.Load(TestData.Stories260K("tok512.bin"));
        int[] ids = tokenizer.Encode(text, addBos: true, addEos: false);
        Assert.That(ids[0], Is.EqualTo(1));
        Assert.That(tokenizer.Decode(ids), Is.EqualTo(text));
    }

    [Test]
    public void Merges_pick_the_highest_scoring_pair_first()
    {
        // "ab" scores higher than "bc", so "abc" becomes ["ab", "c"], not ["a", "bc"].
        var tokenizer = new ScoredBpeTokenizer(["<unk>", "<s>", "</s>", " ", "a", "b", "c", "ab", "bc"],
            [0, 0, 0, 0, 0, 0, 0, 2, 1], 1, 2);
        Assert.That(tokenizer.Encode("abc", false, false), Is.EqualTo(new[] { 3, 7, 6 }));
    }

    [Test]
    public void Merging_reduces_the_token_count()
    {
        var tokenizer = Llama2cTokenizerLoader.Load(TestData.Stories260K("tok512.bin"));
        string text = "Once upon a time, there was a little girl named Lily.";
        Assert.That(tokenizer.Encode(text, false, false), Has.Length.LessThan(text.Length / 2));
    }

    [Test]
    public void A_truncated_tokenizer_file_is_rejected()
    {
        byte[] bytes = File.ReadAllBytes(TestData.Stories260K("tok512.bin"));
        string path = Path.Combine(TestData.TempDirectory(), "tok.bin");
        File.WriteAllBytes(path, bytes[..(bytes.Length - 3)]);
        var e = Assert.Throws<ModelFormatException>(() => Llama2cTokenizerLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("truncated"));
    }
}
