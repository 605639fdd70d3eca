using BenchmarkDotNet.Attributes;
using NativeReft.Backends.Cpu;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Bench;

/// <summary>
/// One CPU training step of a rank-4 LoReFT at every layer (positions f7+l7): forward on the tape, backward to
/// the lowest intervened layer, clipping, AdamW and the retraction. A batch of 4 sequences of 64 tokens
/// (32 prompt, 32 response); Tokens/s counts all 256 tokens of the step.
/// </summary>
[Config(typeof(TokensPerSecondConfig))]
public class Perf_TrainStep
{
    private const int Batch = 4, PromptLength = 32, ResponseLength = 32, Tokens = Batch * (PromptLength + ResponseLength);

    private CpuBackend<float> backend = null!;
    private LlamaModel model = null!;
    private InterventionSet set = null!;
    private FixedBatchStep step = null!;

    /// <summary>Model shape; stories260K uses the real checkpoint when ../shared has it.</summary>
    [Params("stories260K", "llama2c-15M")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        backend = new CpuBackend<float>();
        model = BenchModels.Load(Shape, backend);
        var config4 = new ReftConfig { Rank = 4, Layers = [.. Enumerable.Range(0, model.Config.Layers)], Positions = new PositionSpec(7, 7) };
        set = InterventionSet.Create(config4, model, seed: 1);
        var rng = new Random(7);
        var examples = Enumerable.Range(0, Batch).Select(i => new ReftExample(
            [model.Config.BosId, .. Enumerable.Range(1, PromptLength + ResponseLength - 1).Select(_ => rng.Next(3, model.Config.VocabSize))],
            PromptLength, i + 1)).ToArray();
        step = new FixedBatchStep(model, set, new ReftBatch(examples));
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public double Step() => step.Run(1e-4).Loss;

    [GlobalCleanup]
    public void Cleanup()
    {
        step.Dispose();
        set.Dispose();
        model.Dispose();
        backend.Dispose();
    }
}
