using NativeReft.IO;
using NativeReft.IO.Gguf;
using NativeReft.Model;
using NativeReft.Tensors;
using NativeReft.Tests.Model;
using NativeReft.Tokenizers;

namespace NativeReft.Tests.IO;

public sealed class GgufTests
{
    [Test]
    public void Stories260K_gguf_has_the_config_of_the_llama2c_checkpoint()
    {
        using var checkpoint = GgufModelLoader.Load(TestData.Stories260K("stories260K.gguf"));
        var c = checkpoint.Config;
        Assert.Multiple(() =>
        {
            Assert.That((c.Dim, c.HiddenDim, c.Layers, c.Heads, c.KvHeads, c.VocabSize), Is.EqualTo((64, 172, 5, 8, 4, 512)));
            Assert.That((c.BosId, c.EosId), Is.EqualTo((1, 2)));
            // The llama2.c model is tied, but its GGUF conversion stores the classifier as output.weight (a copy of
            // token_embd, checked below), so the GGUF loads untied.
            Assert.That(c.TiedEmbeddings, Is.False);
        });
    }

    [Test]
    public void Stories260K_gguf_metadata_gives_rms_eps_and_rope_base()
    {
        string path = TestData.Stories260K("stories260K.gguf");
        using (var file = MappedFile.Open(path))
        {
            var gguf = GgufFile.Read(file);
            Assert.That(gguf.FindNumber("llama.attention.layer_norm_rms_epsilon"), Is.EqualTo(1e-5f));
            Assert.That(gguf.FindNumber("llama.rope.freq_base"), Is.Null, "the file omits the base: the default applies");
        }
        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That((checkpoint.Config.NormEps, checkpoint.Config.RopeTheta), Is.EqualTo((1e-5f, 10000.0)));
    }

    [Test]
    public void Stories260K_gguf_weights_equal_the_llama2c_weights()
    {
        using var gguf = GgufModelLoader.Load(TestData.Stories260K("stories260K.gguf"));
        using var bin = Llama2cLoader.Load(TestData.Stories260K("stories260K.bin"));
        foreach (var (name, _) in WeightNames.Expected(bin.Config))
        {
            AssertSame(gguf.Weights[name].ReadAll(), bin.Weights[name].ReadAll(), name);
        }
        AssertSame(gguf.Weights[WeightNames.Classifier].ReadAll(), bin.Weights[WeightNames.Embedding].ReadAll(), "output.weight vs the tied embedding");
    }

    [Test]
    public void Stories260K_gguf_tokenizer_equals_tok512()
    {
        using var checkpoint = GgufModelLoader.Load(TestData.Stories260K("stories260K.gguf"));
        var embedded = (ScoredBpeTokenizer)checkpoint.Tokenizer!;
        var reference = Llama2cTokenizerLoader.Load(TestData.Stories260K("tok512.bin"));
        Assert.That(embedded.VocabSize, Is.EqualTo(512));
        // llama2.c's export writes BOS/EOS as "\n<s>\n" and "\n</s>\n"; the GGUF keeps SentencePiece's "<s>", "</s>".
        // Neither is ever printed (Decode drops them), so only they may differ.
        Assert.That((embedded.Piece(1), embedded.Piece(2)), Is.EqualTo(("<s>", "</s>")));
        Assert.That((reference.Piece(1), reference.Piece(2)), Is.EqualTo(("\n<s>\n", "\n</s>\n")));
        var differing = Enumerable.Range(0, 512).Where(id => embedded.Piece(id) != reference.Piece(id)).ToArray();
        Assert.That(differing, Is.EqualTo(new[] { 1, 2 }));
        const string text = "Once upon a time, Lily saw a big red ball. \"Wow!\" she said.";
        int[] tokens = reference.Encode(text, addBos: true, addEos: true);
        Assert.That(embedded.Encode(text, addBos: true, addEos: true), Is.EqualTo(tokens));
        Assert.That(embedded.Decode(tokens), Is.EqualTo(reference.Decode(tokens)));
    }

    [TestCase(DType.F32, true, 32)]
    [TestCase(DType.F16, false, 64)]
    [TestCase(DType.BF16, true, 32)]
    public void A_written_model_loads_back(DType type, bool tied, int alignment)
    {
        var (config, weights) = TinyModels.Random(seed: 11, tied);
        config = config with { RopeTheta = 50000, NormEps = 1e-6f, BosId = 1, EosId = 2 };
        string path = Path.Combine(TestData.TempDirectory(), "tiny.gguf");
        TinyGguf.Writer(config, weights, type, alignment).Save(path);

        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Config, Is.EqualTo(config));
        foreach (var (name, data) in weights)
        {
            AssertSame(checkpoint.Weights[name].ReadAll(), [.. data.Select(x => Round(type, x))], name);
            Assert.That(checkpoint.Weights[name].DType, Is.EqualTo(type));
        }
        var tokenizer = (ScoredBpeTokenizer)checkpoint.Tokenizer!;
        Assert.That(tokenizer.Piece(30), Is.EqualTo(" a"), "U+2581 becomes a space");
        Assert.That(tokenizer.Encode("a b", addBos: true, addEos: true), Is.EqualTo(new[] { 1, 30, 31, 2 }));
    }

    [Test]
    public void Version_2_files_load()
    {
        string path = WriteTiny();
        var bytes = File.ReadAllBytes(path);
        bytes[4] = 2;
        File.WriteAllBytes(path, bytes);
        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Config.Layers, Is.EqualTo(TinyModels.Config().Layers));
    }

    [Test]
    public void ModelLoader_recognizes_a_gguf_by_its_magic()
    {
        string gguf = WriteTiny();
        string path = Path.ChangeExtension(gguf, ".bin");
        File.Move(gguf, path);
        using var checkpoint = ModelLoader.Load(path);
        Assert.That(checkpoint.Tokenizer, Is.Not.Null);
    }

    [Test]
    public void A_gpt2_vocabulary_loads_the_model_without_a_tokenizer()
    {
        string path = WriteTiny(w => w.Set("tokenizer.ggml.model", "gpt2"));
        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Tokenizer, Is.Null);
    }

    [Test]
    public void Linear_rope_scaling_is_read()
    {
        string path = WriteTiny(w =>
        {
            w.Set("llama.rope.scaling.type", "linear");
            w.Set("llama.rope.scaling.factor", 4f);
        });
        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Config.RopeScaling, Is.EqualTo(new RopeScaling("linear", 4)));
    }

    [Test]
    public void Llama3_rope_factors_become_llama3_scaling()
    {
        // Theta 500000 puts the lowest frequency beyond the 8192-token band, as in Llama 3, so one factor is 32.
        var (config, weights) = TinyModels.Random(seed: 5);
        config = config with { RopeTheta = 500000 };
        var scaling = new RopeScaling("llama3", 32, 1, 4, 8192);
        double[] plain = config.RopeInverseFrequencies();
        double[] scaled = (config with { RopeScaling = scaling }).RopeInverseFrequencies();
        float[] factors = [.. plain.Zip(scaled, (p, s) => (float)(p / s))];
        Assume.That(factors.Distinct().Count(), Is.EqualTo(3), "the test needs kept, blended and scaled frequencies");
        string path = Path.Combine(TestData.TempDirectory(), "llama3.gguf");
        var writer = TinyGguf.Writer(config, weights, DType.F32);
        writer.AddTensor("rope_freqs.weight", [factors.Length], DType.F32, factors);
        writer.Save(path);

        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Config.RopeScaling, Is.EqualTo(scaling));
    }

    [Test]
    public void Rope_factors_of_ones_are_ignored()
    {
        int half = TinyModels.Config().HeadSize / 2;
        string path = WriteTiny(w => w.AddTensor("rope_freqs.weight", [half], DType.F32, Enumerable.Repeat(1f, half).ToArray()));
        using var checkpoint = GgufModelLoader.Load(path);
        Assert.That(checkpoint.Config.RopeScaling, Is.Null);
    }

    /// <summary>A valid tiny F32 model, edited by <paramref name="edit"/> before saving; returns its path.</summary>
    internal static string WriteTiny(Action<GgufWriter>? edit = null, Action<Dictionary<string, float[]>>? editWeights = null)
    {
        var (config, weights) = TinyModels.Random(seed: 7);
        editWeights?.Invoke(weights);
        var writer = TinyGguf.Writer(config, weights, DType.F32);
        edit?.Invoke(writer);
        string path = Path.Combine(TestData.TempDirectory(), "tiny.gguf");
        writer.Save(path);
        return path;
    }

    private static float Round(DType type, float x) => type switch
    {
        DType.F16 => (float)(Half)x,
        DType.BF16 => DTypes.BF16ToFloat(DTypes.FloatToBF16(x)),
        _ => x,
    };

    // Exact comparison; on failure names the first differing element instead of dumping the arrays.
    private static void AssertSame(float[] actual, float[] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        int first = Enumerable.Range(0, actual.Length).FirstOrDefault(i => actual[i] != expected[i], -1);
        int differing = Enumerable.Range(0, actual.Length).Count(i => actual[i] != expected[i]);
        Assert.That(first, Is.EqualTo(-1),
            $"{what}: {differing} of {actual.Length} elements differ; the first is [{first}] = {(first >= 0 ? actual[first] : 0)}, expected {(first >= 0 ? expected[first] : 0)}");
    }
}
