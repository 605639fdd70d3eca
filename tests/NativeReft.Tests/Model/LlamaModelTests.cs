using NativeReft.Backends.Cpu;
using NativeReft.Model;

namespace NativeReft.Tests.Model;

public sealed class LlamaModelTests
{
    [Test]
    public void Cached_decoding_gives_the_logits_of_the_full_forward()
    {
        var (config, weights) = TinyModels.Random(seed: 3);
        using var backend = new CpuBackend<float>();
        using var model = LlamaModel.FromWeights(config, weights, backend);
        int[] tokens = [1, 5, 9, 2, 30, 17, 8];
        using var full = model.Forward(tokens, batch: 1);
        var expected = new float[full.Length];
        backend.Download(full, expected);

        using var cache = model.CreateCache(1, 16);
        using (var prefill = model.Step(cache, tokens.AsSpan(0, 3)))
        {
            AssertRow(backend.Data(prefill), expected, 2, config.VocabSize);
        }
        for (int t = 3; t < tokens.Length; t++)
        {
            using var step = model.Step(cache, tokens.AsSpan(t, 1));
            AssertRow(backend.Data(step), expected, t, config.VocabSize);
        }
        Assert.That(cache.Length, Is.EqualTo(tokens.Length));
    }

    [Test]
    public void A_padded_batch_gives_each_sequence_its_unpadded_logits()
    {
        var (config, weights) = TinyModels.Random(seed: 4);
        using var backend = new CpuBackend<float>();
        using var model = LlamaModel.FromWeights(config, weights, backend);
        int[] a = [1, 4, 7, 11, 3];
        int[] b = [1, 20, 6];
        // b is left-padded to length 5 in the batch; the mask hides its two pad tokens.
        int[] batch = [.. a, 0, 0, .. b];
        bool[] mask = [true, true, true, true, true, false, false, true, true, true];
        using var both = model.Forward(batch, 2, mask);
        using var aliceAlone = model.Forward(a, 1);
        using var bobAlone = model.Forward(b, 1);
        var all = backend.Data(both);
        int v = config.VocabSize;
        Assert.That(all.AsSpan(0, 5 * v).ToArray(), Is.EqualTo(backend.Data(aliceAlone)).Within(1e-5f));
        Assert.That(all.AsSpan(7 * v, 3 * v).ToArray(), Is.EqualTo(backend.Data(bobAlone)).Within(1e-5f));
    }

    [Test]
    public void The_demo_model_recites_its_text()
    {
        var (config, weights, tokenizer) = DemoModel.Create();
        using var backend = new CpuBackend<float>();
        using var model = LlamaModel.FromWeights(config, weights, backend);
        var generator = new NativeReft.Generation.Generator(model, tokenizer);
        string text = string.Concat(generator.Generate("", new NativeReft.Generation.GenerationOptions { Temperature = 0 }));
        Assert.That(text, Is.EqualTo(DemoModel.Text));
    }

    private static void AssertRow(float[] actual, float[] all, int row, int vocab) =>
        Assert.That(actual, Is.EqualTo(all.AsSpan(row * vocab, vocab).ToArray()).Within(1e-5f), $"logits of position {row}");
}
