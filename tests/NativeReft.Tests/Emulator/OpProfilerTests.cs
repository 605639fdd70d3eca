using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// The op profiler on a training step, on the emulator: every op it times carries its work, and the GEMM FLOPs it
/// sums are those of the step's linear layers (what MFU's 4 N FLOPs per token counts), so the breakdown's
/// TFLOP/s rest on the right amounts.
/// </summary>
public sealed class OpProfilerTests
{
    [Test]
    public void A_profiled_step_counts_the_FLOPs_of_every_linear_layer_it_runs()
    {
        var shape = ModelShapes.Stories260K;
        var config = new ReftConfig { Rank = 2, Layers = [1, 3], Positions = new PositionSpec(2, 2) };
        using var backend = new CudaBackend(Emulated.Runtime);
        using var model = LlamaModel.Random(shape, backend);
        using var set = InterventionSet.Create(config, model, seed: 2);
        var batch = SyntheticBatch.Create(2, 16, shape.VocabSize);
        using var step = new FixedBatchStep(model, set, batch);
        using var profiler = new OpProfiler(backend.Runtime);
        backend.Profiler = profiler;
        step.Run(1e-3);
        profiler.Collect();
        backend.Profiler = null;

        var totals = profiler.Totals;
        Assert.That(totals.Where(t => t.Value.Work.Bytes <= 0).Select(t => t.Key), Is.Empty, "ops timed without their work");
        double tokens = batch.Tokens.Length, labelled = batch.Targets.Length;
        long d = shape.Dim, kv = shape.KvDim, f = shape.HiddenDim;
        double layerWeights = d * d * 2 + d * kv * 2 + 3 * d * f; // q, o; k, v; gate, up, down
        int backwardLayers = shape.Layers - 1 - config.Layers.Min(); // the backward stops at the lowest intervened layer's output
        double forward = 2 * tokens * layerWeights * shape.Layers + 2 * labelled * d * shape.VocabSize;
        double backward = 2 * tokens * layerWeights * backwardLayers + 2 * labelled * d * shape.VocabSize;
        double gemmFlops = totals.Where(t => t.Key.StartsWith("matmul", StringComparison.Ordinal)).Sum(t => t.Value.Work.Flops);
        Assert.That(gemmFlops, Is.EqualTo(forward + backward).Within(1e-9).Percent);
        Assert.That(totals["swiglu"].Work.Bytes, Is.EqualTo(2.0 * 3 * tokens * f * shape.Layers));
        Assert.That(totals["swiglu backward"].Work.Bytes, Is.EqualTo(2.0 * 5 * tokens * f * backwardLayers));
    }
}
