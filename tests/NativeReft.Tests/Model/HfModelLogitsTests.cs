using NativeReft.Backends.Cpu;
using NativeReft.IO;
using NativeReft.IO.Hf;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.Tests.Model;

/// <summary>A tiny random LLaMA written as an HF directory loads back to the very model built in memory.</summary>
public sealed class HfModelLogitsTests
{
    private static readonly int[] Tokens = [1, 7, 3, 22, 40, 9, 0, 15];

    [TestCase(DType.F32, 1, true)]
    [TestCase(DType.F32, 3, false)]
    [TestCase(DType.BF16, 1, true)]
    [TestCase(DType.BF16, 2, false)]
    [TestCase(DType.F16, 1, false)]
    public void Saved_and_loaded_weights_give_the_in_memory_logits(DType dtype, int shards, bool tied)
    {
        var (config, weights) = TinyModels.Random(seed: 11, tied);
        string dir = TestData.TempDirectory();
        HfModelWriter.Save(dir, config, weights, dtype, shards);

        // What the file can hold: the in-memory model gets the same rounding the writer applied.
        var stored = weights.ToDictionary(e => e.Key, e => e.Value.Select(x => Round(x, dtype)).ToArray());
        using var backend = new CpuBackend<float>();
        using var inMemory = LlamaModel.FromWeights(config, stored, backend);
        using var checkpoint = ModelLoader.Load(dir);
        using var loaded = LlamaModel.Load(checkpoint, backend);

        Assert.That(checkpoint.Config with { }, Is.EqualTo(config), "config.json round trip");
        using var expected = inMemory.Forward(Tokens, batch: 2);
        using var actual = loaded.Forward(Tokens, batch: 2);
        Assert.That(backend.Data(actual), Is.EqualTo(backend.Data(expected)), "logits, bit for bit");
    }

    private static float Round(float x, DType dtype) => dtype switch
    {
        DType.BF16 => DTypes.BF16ToFloat(DTypes.FloatToBF16(x)),
        DType.F16 => (float)(Half)x,
        _ => x,
    };
}
