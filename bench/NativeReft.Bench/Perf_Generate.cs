using BenchmarkDotNet.Attributes;
using NativeReft.Backends.Cpu;
using NativeReft.Model;

namespace NativeReft.Bench;

/// <summary>
/// CPU generation: greedy decoding through the KV cache from BOS, one token per step, as `nativereft generate`
/// runs it. The Tokens/s column is the figure to compare with llama2.c's run.c (OpenMP, same cores).
/// </summary>
[Config(typeof(TokensPerSecondConfig))]
public class Perf_Generate
{
    private const int Tokens = 256; // as llama2.c run -n 256

    private CpuBackend<float> backend = null!;
    private LlamaModel model = null!;
    private KvCache cache = null!;
    private float[] logits = null!;
    private NativeReft.Tensors.Tensor output = null!;

    /// <summary>Model shape; stories260K uses the real checkpoint when ../shared has it.</summary>
    [Params("stories260K", "llama2c-15M")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        backend = new CpuBackend<float>();
        model = BenchModels.Load(Shape, backend);
        cache = model.CreateCache(1, Tokens);
        logits = new float[model.Config.VocabSize];
        output = backend.Zeros(1, model.Config.VocabSize);
    }

    [Benchmark(OperationsPerInvoke = Tokens)]
    public int Greedy256Tokens()
    {
        cache.Reset();
        int token = model.Config.BosId;
        for (int i = 0; i < Tokens; i++)
        {
            model.Step(cache, [token], output);
            backend.Download(output, logits);
            token = System.Numerics.Tensors.TensorPrimitives.IndexOfMax(logits);
        }
        return token;
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        output.Dispose();
        cache.Dispose();
        model.Dispose();
        backend.Dispose();
    }
}
