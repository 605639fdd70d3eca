using System.Collections.Concurrent;
using System.Globalization;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Toolchains.InProcess.NoEmit;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Training;

namespace NativeReft.Bench;

/// <summary>
/// The host's own cost of queuing one training step op by op, as the trainer queues every step on a GPU: the CUDA
/// backend on the kernel emulator, the step captured as a graph, so nothing runs and the time is the host's alone
/// (the tape, the memory pool, the staged tables, each launch's arguments; a GPU's driver adds its own cost per
/// launch, not counted here). A rank-8 LoReFT at every layer, f7+l7, 8 sequences of 64 tokens. The "us/node"
/// column divides the time by the graph's nodes: the launches, copies and fills the step queues.
/// </summary>
[Config(typeof(QueueStepConfig))]
public class Perf_QueueStep
{
    private static readonly ConcurrentDictionary<string, int> NodesByShape = new();

    private CudaBackend backend = null!;
    private BenchStep bench = null!;

    /// <summary>Model shape (from <see cref="ModelShapes"/>); the node count grows with its layers.</summary>
    [Params("stories260K", "llama2c-15M")]
    public string Shape { get; set; } = "";

    [GlobalSetup]
    public void Setup()
    {
        backend = CudaBackend.OpenEmulator();
        bench = new BenchStep(LlamaModel.Random(ModelShapes.ByName(Shape), backend), rank: 8,
            config => SyntheticBatch.Create(8, 64, config.VocabSize));
        bench.Step.Run(1e-4); // a capture needs the step run once: it fills the pool and sizes the staging
        using var captured = backend.CaptureStep(bench.Step.Scalars, bench.Step.Queue);
        NodesByShape[Shape] = captured.Nodes;
    }

    /// <summary>Queues the whole step into a graph, then releases it.</summary>
    [Benchmark]
    public void QueueStep()
    {
        using var captured = backend.CaptureStep(bench.Step.Scalars, bench.Step.Queue);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        bench.Dispose();
        backend.Dispose();
    }

    /// <summary>In process (the column reads the node counts the setup recorded), with the time per node.</summary>
    private sealed class QueueStepConfig : ManualConfig
    {
        public QueueStepConfig()
        {
            AddJob(Job.Default.WithToolchain(InProcessNoEmitToolchain.Instance).WithId("host"));
            AddColumn(new PerNodeColumn());
        }
    }

    private sealed class PerNodeColumn() : BenchColumn(nameof(PerNodeColumn), "us/node", 0,
        "microseconds of host time per launch, copy or fill the step queues (mean / graph nodes)", numeric: false)
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase)
        {
            string shape = benchmarkCase.Parameters.Items.FirstOrDefault(p => p.Name == nameof(Shape))?.Value?.ToString() ?? "";
            return summary[benchmarkCase]?.ResultStatistics is { } stats && NodesByShape.TryGetValue(shape, out int nodes) && nodes > 0
                ? (stats.Mean / 1000 / nodes).ToString("F2", CultureInfo.InvariantCulture) + $" ({nodes} nodes)"
                : "-";
        }
    }
}
