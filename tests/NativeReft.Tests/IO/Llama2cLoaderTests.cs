using NativeReft.IO;

namespace NativeReft.Tests.IO;

public sealed class Llama2cLoaderTests
{
    [Test]
    public void Stories260K_header_and_weights_load()
    {
        using var checkpoint = Llama2cLoader.Load(TestData.Stories260K("stories260K.bin"));
        var c = checkpoint.Config;
        Assert.That((c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize, c.MaxSeqLen), Is.EqualTo((64, 172, 5, 8, 4, 512, 512)));
        Assert.That(c.TiedEmbeddings, Is.True);
        Assert.That(checkpoint.Weights[NativeReft.Model.WeightNames.Embedding].ReadAll(), Has.Some.Not.EqualTo(0f));
    }

    [Test]
    public void A_truncated_file_names_the_file_and_the_problem()
    {
        string path = Corrupt(bytes => bytes[..(bytes.Length - 100)]);
        var e = Assert.Throws<ModelFormatException>(() => Llama2cLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("truncated"));
    }

    [Test]
    public void A_file_shorter_than_the_header_is_rejected()
    {
        string path = Corrupt(bytes => bytes[..10]);
        var e = Assert.Throws<ModelFormatException>(() => Llama2cLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("header"));
    }

    [Test]
    public void A_header_with_impossible_dimensions_is_rejected()
    {
        // n_heads = 7 does not divide n_kv_heads' multiple: heads must be a multiple of kv heads.
        string path = Corrupt(bytes =>
        {
            BitConverter.GetBytes(7).CopyTo(bytes, 12);
            return bytes;
        });
        var e = Assert.Throws<ModelFormatException>(() => Llama2cLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain(path).And.Contain("heads"));
    }

    [Test]
    public void An_empty_file_is_rejected()
    {
        string path = Path.Combine(TestData.TempDirectory(), "empty.bin");
        File.WriteAllBytes(path, []);
        var e = Assert.Throws<ModelFormatException>(() => Llama2cLoader.Load(path))!;
        Assert.That(e.Message, Does.Contain("empty"));
    }

    private static string Corrupt(Func<byte[], byte[]> change)
    {
        string path = Path.Combine(TestData.TempDirectory(), "corrupt.bin");
        File.WriteAllBytes(path, change(File.ReadAllBytes(TestData.Stories260K("stories260K.bin"))));
        return path;
    }
}
