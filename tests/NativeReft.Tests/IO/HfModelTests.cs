using System.Text.Json.Nodes;
using NativeReft.IO;
using NativeReft.IO.Hf;
using NativeReft.IO.Safetensors;
using NativeReft.Model;
using NativeReft.Tensors;
using NativeReft.Tests.Model;
using NativeReft.Tokenizers;

namespace NativeReft.Tests.IO;

[TestFixture]
public sealed class HfModelTests
{
    private string directory = "";

    [SetUp]
    public void SetUp() => directory = TestData.TempDirectory();

    [TearDown]
    public void TearDown() => Directory.Delete(directory, recursive: true);

    private static float Rounded(float x, DType dtype) => dtype switch
    {
        DType.F16 => (float)(Half)x,
        DType.BF16 => DTypes.BF16ToFloat(DTypes.FloatToBF16(x)),
        _ => x,
    };

    private (LlamaConfig Config, Dictionary<string, float[]> Weights) SaveTiny(bool tied = true, DType dtype = DType.F32, int shards = 1)
    {
        var (config, weights) = TinyModels.Random(seed: 7, tied);
        HfModelWriter.Save(directory, config, weights, dtype, shards);
        return (config, weights);
    }

    private string PathOf(string file) => Path.Combine(directory, file);

    private static void AssertRejected(TestDelegate load, string path, string phrase)
    {
        var e = Assert.Throws<ModelFormatException>(load)!;
        Assert.That(e.Message, Does.Contain(path).And.Contain(phrase));
    }

    [TestCase(1, DType.F32, true)]
    [TestCase(1, DType.F32, false)]
    [TestCase(3, DType.F32, false)]
    [TestCase(1, DType.BF16, true)]
    [TestCase(3, DType.BF16, false)]
    [TestCase(2, DType.F16, true)]
    public void Saved_model_loads_back_with_every_weight(int shards, DType dtype, bool tied)
    {
        var (config, weights) = SaveTiny(tied, dtype, shards);

        using var checkpoint = HfModelLoader.Load(directory);

        Assert.That(checkpoint.Config, Is.EqualTo(config));
        Assert.That(checkpoint.Tokenizer, Is.Null);
        Assert.That(checkpoint.Weights.Keys, Is.EquivalentTo(WeightNames.Expected(config).Select(e => e.Name)));
        Assert.That(checkpoint.Weights.ContainsKey(WeightNames.Classifier), Is.EqualTo(!tied));
        foreach (var (name, tensor) in checkpoint.Weights)
        {
            Assert.That(tensor.DType, Is.EqualTo(dtype), name);
            Assert.That(tensor.ReadAll(), Is.EqualTo(weights[name].Select(x => Rounded(x, dtype)).ToArray()), name);
        }
    }

    [Test]
    public void Sharded_save_writes_HF_shard_names_and_an_index_of_every_weight()
    {
        var (config, _) = SaveTiny(tied: false, DType.BF16, shards: 3);

        string[] shards = ["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"];
        Assert.That(Directory.GetFiles(directory).Select(Path.GetFileName),
            Is.EquivalentTo(shards.Append("model.safetensors.index.json").Append("config.json")));
        var index = JsonNode.Parse(File.ReadAllText(PathOf("model.safetensors.index.json")))!;
        var map = index["weight_map"]!.AsObject();
        Assert.That(map.Select(kv => kv.Key), Is.EquivalentTo(WeightNames.Expected(config).Select(e => e.Name)));
        Assert.That(map.Select(kv => (string)kv.Value!).Distinct(), Is.EquivalentTo(shards));
        long dataBytes = WeightNames.Expected(config).Sum(e => e.Shape.Aggregate(2L, (n, d) => n * d));
        Assert.That((long)index["metadata"]!["total_size"]!, Is.EqualTo(dataBytes));
    }

    [Test]
    public void Saving_single_file_over_a_sharded_save_removes_the_index()
    {
        SaveTiny(shards: 3);
        SaveTiny(shards: 1);

        Assert.That(File.Exists(PathOf("model.safetensors.index.json")), Is.False);
        using var checkpoint = HfModelLoader.Load(directory);
        Assert.That(checkpoint.Weights[WeightNames.Embedding].FilePath, Is.EqualTo(PathOf("model.safetensors")));
    }

    [Test]
    public void Extra_tensors_are_ignored()
    {
        var (config, weights) = TinyModels.Random(seed: 3);
        var writer = new SafetensorsWriter();
        foreach (var (name, shape) in WeightNames.Expected(config))
        {
            writer.Add(name, shape, weights[name]);
        }
        writer.Add("model.layers.0.self_attn.rotary_emb.inv_freq", [config.HeadSize / 2], new float[config.HeadSize / 2]);
        writer.Add(WeightNames.Classifier, [config.VocabSize, config.Dim], weights[WeightNames.Embedding]); // stored though tied
        writer.Write(PathOf("model.safetensors"));
        File.WriteAllText(PathOf("config.json"), HfConfig.ToJson(config));

        using var checkpoint = HfModelLoader.Load(directory);

        Assert.That(checkpoint.Weights.Keys, Is.EquivalentTo(WeightNames.Expected(config).Select(e => e.Name)));
    }

    [Test]
    public void Config_round_trips_through_json()
    {
        var config = TinyModels.Config() with
        {
            HeadDim = 16, MaxSeqLen = 131072, NormEps = 1e-5f, RopeTheta = 500000, BosId = 3, EosId = 4,
            RopeScaling = new RopeScaling("llama3", 8, 1, 4, 8192),
        };

        Assert.That(HfConfig.Parse(HfConfig.ToJson(config, DType.BF16), "config.json"), Is.EqualTo(config));
        Assert.That(HfConfig.Parse(HfConfig.ToJson(config with { RopeScaling = null }), "config.json").RopeScaling, Is.Null);
    }

    private static JsonObject MinimalConfig() => new()
    {
        ["model_type"] = "llama", ["hidden_size"] = 16, ["intermediate_size"] = 40, ["num_hidden_layers"] = 2,
        ["num_attention_heads"] = 4, ["vocab_size"] = 37,
    };

    [Test]
    public void Missing_optional_keys_take_transformers_defaults()
    {
        var c = HfConfig.Parse(MinimalConfig().ToJsonString(), "config.json");

        Assert.That((c.KvHeads, c.HeadSize, c.NormEps, c.RopeTheta, c.TiedEmbeddings, c.BosId, c.EosId, c.MaxSeqLen),
            Is.EqualTo((4, 4, 1e-6f, 10000.0, false, 1, 2, 2048)));
        Assert.That(c.RopeScaling, Is.Null);
    }

    [Test]
    public void Config_accepts_an_EOS_list_the_architectures_key_and_default_or_linear_rope_scaling()
    {
        var json = MinimalConfig();
        json.Remove("model_type");
        json["architectures"] = new JsonArray("LlamaForCausalLM");
        json["eos_token_id"] = new JsonArray(9, 10);
        json["rope_scaling"] = new JsonObject { ["type"] = "default" };
        Assert.That(HfConfig.Parse(json.ToJsonString(), "config.json"), Has.Property("EosId").EqualTo(9).And.Property("RopeScaling").Null);

        json["rope_scaling"] = new JsonObject { ["rope_type"] = "linear", ["factor"] = 2.0 };
        Assert.That(HfConfig.Parse(json.ToJsonString(), "config.json").RopeScaling, Is.EqualTo(new RopeScaling("linear", 2)));
    }

    private static IEnumerable<TestCaseData> BadConfigs()
    {
        static TestCaseData Case(string name, Action<JsonObject> edit, string phrase) =>
            new TestCaseData(edit, phrase).SetName($"Bad config is rejected: {name}");

        yield return Case("missing key", j => j.Remove("hidden_size"), "missing required key 'hidden_size'");
        yield return Case("wrong type", j => j["num_hidden_layers"] = "two", "key 'num_hidden_layers' must be an integer, found string \"two\"");
        yield return Case("gpt2", j => j["model_type"] = "gpt2", "unsupported architecture 'gpt2' (supported: llama / LlamaForCausalLM)");
        yield return Case("yarn", j => j["rope_scaling"] = new JsonObject { ["rope_type"] = "yarn", ["factor"] = 4 }, "rope_scaling type 'yarn' is not supported");
        yield return Case("no factor", j => j["rope_scaling"] = new JsonObject { ["rope_type"] = "llama3" }, "missing required key 'rope_scaling.factor'");
        yield return Case("bad heads", j => j["num_key_value_heads"] = 3, "heads (4) must be a multiple of kv heads (3)");
        yield return Case("biases", j => j["attention_bias"] = true, "attention_bias / mlp_bias are not supported");
    }

    [TestCaseSource(nameof(BadConfigs))]
    public void Bad_config_is_rejected(Action<JsonObject> edit, string phrase)
    {
        SaveTiny();
        var json = MinimalConfig();
        edit(json);
        string path = PathOf("config.json");
        File.WriteAllText(path, json.ToJsonString());

        AssertRejected(() => HfModelLoader.Load(directory), path, phrase);
    }

    [Test]
    public void Invalid_config_json_is_named()
    {
        SaveTiny();
        File.WriteAllText(PathOf("config.json"), "{\"hidden_size\": 16,");

        AssertRejected(() => HfModelLoader.Load(directory), PathOf("config.json"), "not valid JSON");
    }

    [Test]
    public void Missing_config_json_is_named()
    {
        SaveTiny();
        File.Delete(PathOf("config.json"));

        AssertRejected(() => HfModelLoader.Load(directory), PathOf("config.json"), "file not found");
    }

    [Test]
    public void Missing_weights_are_named()
    {
        SaveTiny();
        File.Delete(PathOf("model.safetensors"));

        AssertRejected(() => HfModelLoader.Load(directory), directory, "no model.safetensors or model.safetensors.index.json");
    }

    [Test]
    public void Missing_shard_is_named()
    {
        SaveTiny(shards: 3);
        File.Delete(PathOf("model-00002-of-00003.safetensors"));

        AssertRejected(() => HfModelLoader.Load(directory), PathOf("model-00002-of-00003.safetensors"), "shard is missing");
    }

    [Test]
    public void A_tensor_the_index_puts_in_the_wrong_shard_is_named()
    {
        SaveTiny(shards: 3);
        var index = JsonNode.Parse(File.ReadAllText(PathOf("model.safetensors.index.json")))!;
        index["weight_map"]![WeightNames.FinalNorm] = "model-00001-of-00003.safetensors"; // it lives in the last shard
        File.WriteAllText(PathOf("model.safetensors.index.json"), index.ToJsonString());

        AssertRejected(() => HfModelLoader.Load(directory), PathOf("model-00001-of-00003.safetensors"),
            $"tensor '{WeightNames.FinalNorm}' is not in this shard");
    }

    [Test]
    public void A_shard_path_that_leaves_the_directory_is_rejected()
    {
        SaveTiny(shards: 2);
        var index = JsonNode.Parse(File.ReadAllText(PathOf("model.safetensors.index.json")))!;
        index["weight_map"]![WeightNames.FinalNorm] = "../elsewhere.safetensors";
        File.WriteAllText(PathOf("model.safetensors.index.json"), index.ToJsonString());

        AssertRejected(() => HfModelLoader.Load(directory), PathOf("model.safetensors.index.json"), "is not a file name in this directory");
    }

    [Test]
    public void A_weight_whose_shape_differs_from_the_config_is_named()
    {
        var (config, _) = SaveTiny();
        File.WriteAllText(PathOf("config.json"), HfConfig.ToJson(config with { HiddenDim = 48 }));

        AssertRejected(() => HfModelLoader.Load(directory), directory,
            $"tensor '{WeightNames.WGate(0)}' has shape (72, 32), the config needs (48, 32)");
    }

    [Test]
    public void An_untied_config_without_lm_head_is_rejected()
    {
        var (config, _) = SaveTiny(tied: true);
        File.WriteAllText(PathOf("config.json"), HfConfig.ToJson(config with { TiedEmbeddings = false }));

        AssertRejected(() => HfModelLoader.Load(directory), directory, $"missing tensor '{WeightNames.Classifier}'");
    }

    [Test]
    public void A_corrupt_shard_is_named()
    {
        SaveTiny(shards: 2);
        string shard = PathOf("model-00002-of-00002.safetensors");
        byte[] bytes = File.ReadAllBytes(shard);
        File.WriteAllBytes(shard, bytes[..^10]);

        AssertRejected(() => HfModelLoader.Load(directory), shard, "run past the end of the data section");
    }

    private void SaveWithVocabulary(int vocabSize)
    {
        var config = TinyModels.Config() with { VocabSize = vocabSize };
        var random = new Random(5);
        var weights = WeightNames.Expected(config).ToDictionary(e => e.Name,
            e => Enumerable.Range(0, e.Shape.Aggregate(1, (n, d) => n * d)).Select(_ => (float)random.NextDouble()).ToArray());
        HfModelWriter.Save(directory, config, weights, DType.BF16);
    }

    [Test]
    public void Tokenizer_json_is_loaded_with_the_configs_BOS_and_EOS()
    {
        SaveWithVocabulary(279);
        HfTokenizerTests.Write(directory, HfTokenizerTests.SentencePieceStyleJson(legacy: true));

        using var checkpoint = HfModelLoader.Load(directory);

        Assert.That(checkpoint.Tokenizer, Is.InstanceOf<HfTokenizer>());
        Assert.That(checkpoint.Tokenizer!.Decode(checkpoint.Tokenizer.Encode("Hello world!", true, true)), Is.EqualTo("Hello world!"));
    }

    [Test]
    public void Tokenizer_model_is_preferred_to_tokenizer_json()
    {
        SaveWithVocabulary(512);
        File.Copy(TestData.Stories260K("tok512.model"), PathOf("tokenizer.model"));
        HfTokenizerTests.Write(directory, HfTokenizerTests.SentencePieceStyleJson(legacy: true)); // 279 tokens: would fail

        using var checkpoint = HfModelLoader.Load(directory);

        Assert.That(checkpoint.Tokenizer, Is.InstanceOf<SentencePieceModelTokenizer>());
        Assert.That(checkpoint.Tokenizer!.VocabSize, Is.EqualTo(512));
    }

    [Test]
    public void A_tokenizer_whose_vocabulary_differs_from_the_config_is_rejected()
    {
        SaveWithVocabulary(300);
        HfTokenizerTests.Write(directory, HfTokenizerTests.SentencePieceStyleJson(legacy: false));

        AssertRejected(() => HfModelLoader.Load(directory), directory, "the tokenizer has 279 tokens but the model");
        var e = Assert.Throws<ModelFormatException>(() => HfModelLoader.Load(directory))!;
        Assert.That(e.Message, Does.Contain("vocabulary of 300"));
    }
}
