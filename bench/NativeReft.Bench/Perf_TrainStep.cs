using BenchmarkDotNet.Attributes;
using NativeReft.Backends.Cpu;
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
    private BenchStep bench = null!;

    /// <summary>Model shape; stories260K uses the real checkpoint when ../shared has it.</summary>
    [Params("stories260K", "llama2c-15M")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        backend = new CpuBackend<float>();
        bench = new BenchStep(BenchModels.Load(Shape, backend), rank: 4, config =>
        {
            var rng = new Random(7);
            return new ReftBatch([.. Enumerable.Range(0, Batch).Select(i => new ReftExample(
                [config.BosId, .. Enumerable.Range(1, PromptLength + ResponseLength - 1).Select(_ => rng.Next(3, config.VocabSize))],
                PromptLength, i + 1))]);
        });
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public double Step() => bench.Step.Run(1e-4).Loss;

    [GlobalCleanup]
    public void Cleanup()
    {
        bench.Dispose();
        backend.Dispose();
    }
}
