using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// Capturing a training step as a graph, on the emulator, which refuses in a capture what CUDA's thread-local
/// capture mode refuses (a host wait, a synchronous copy, a copy from pageable memory, a device allocation):
/// what a capture needs first, what a replay may change, and what a step inside a capture must not do. That a
/// replay equals the step run op by op is CudaBackendTrainingSuite's test.
/// </summary>
public sealed class StepCaptureTests
{
    private static readonly LlamaConfig Shape = ModelShapes.Stories260K;
    private static readonly ReftConfig Config = new() { Rank = 2, Layers = [1, 3], Positions = new PositionSpec(2, 2) };

    [Test]
    public void A_step_must_run_once_before_it_is_captured()
    {
        using var fixture = new Fixture();
        var ex = Assert.Throws<InvalidOperationException>(() => fixture.Backend.CaptureStep(fixture.Step.Scalars, fixture.Step.Queue));
        Assert.That(ex!.Message, Does.Contain("run the step once"));
    }

    [Test]
    public void A_capture_refuses_the_op_profiler()
    {
        using var fixture = new Fixture();
        fixture.Step.Run(1e-3);
        using var profiler = new OpProfiler(fixture.Backend.Runtime);
        fixture.Backend.Profiler = profiler;
        var ex = Assert.Throws<InvalidOperationException>(() => fixture.Backend.CaptureStep(fixture.Step.Scalars, fixture.Step.Queue));
        Assert.That(ex!.Message, Does.Contain("profiler"));
    }

    [Test]
    public void A_replay_changes_only_the_learning_rate_and_the_step_and_follows_a_read()
    {
        using var fixture = new Fixture();
        fixture.Step.Run(1e-3);
        using var captured = fixture.Backend.CaptureStep(fixture.Step.Scalars, fixture.Step.Queue);
        var next = fixture.Step.Optimizer.Next(1e-3);
        var ex = Assert.Throws<ArgumentException>(() => captured.Run(next with { Beta2 = 0.99 }));
        Assert.That(ex!.Message, Does.Contain("capture again"));

        captured.Run(next);
        Assert.Throws<InvalidOperationException>(() => captured.Run(fixture.Step.Optimizer.Next(1e-3)), "the last step was not read");
        Assert.That(double.IsFinite(fixture.Step.Scalars.Read().Loss), Is.True);
    }

    [Test]
    public void A_host_wait_inside_a_capture_is_refused_and_the_backend_still_runs_steps()
    {
        using var fixture = new Fixture();
        fixture.Step.Run(1e-3);
        // The host-summing loss waits for the device: not something a graph can hold.
        var ex = Assert.Throws<InvalidOperationException>(() => fixture.Backend.CaptureStep(fixture.Step.Scalars,
            () => ReftObjective.ForwardBackward(fixture.Model, fixture.Set, fixture.Batch, 1.0)));
        Assert.That(ex!.Message, Does.Contain("capturing"));
        long inUse = fixture.Backend.Runtime.Pool.BytesInUse;
        Assert.That(double.IsFinite(fixture.Step.Run(1e-3).Loss), Is.True, "op by op after the failed capture");
        Assert.That(fixture.Backend.Runtime.Pool.BytesInUse, Is.EqualTo(inUse), "the failed capture reserved nothing");
    }

    [Test]
    public void A_copy_from_pageable_memory_cannot_be_captured()
    {
        var runtime = Emulated.Runtime;
        using var stream = runtime.CreateStream();
        using var buffer = runtime.Allocate<int>(4);
        using var pinned = runtime.AllocatePinned<int>(4);
        int[] pageable = [1, 2, 3, 4];
        Assert.Throws<InvalidOperationException>(() => runtime.Capture(stream, () => runtime.CopyToDevice<int>(pageable, buffer.View, stream)));
        using var graph = runtime.Capture(stream, () => pinned.CopyToDeviceAsync(runtime, buffer.View, stream));
        pageable.CopyTo(pinned.Span);
        graph.Launch(stream);
        Assert.That(buffer.ToArray(), Is.EqualTo(pageable), "the replay reads the page-locked memory as it is then");
    }

    [Test]
    public void A_diverged_step_leaves_the_parameters_as_they_were()
    {
        using var fixture = new Fixture();
        var before = fixture.Set.Interventions.SelectMany(i => i.Slots()).Select(s => Download(fixture.Backend, s.Parameter)).ToList();
        var scalars = fixture.Step.Scalars;
        scalars.Begin(fixture.Step.Optimizer.Next(1e-3));
        fixture.Step.Queue();
        // Poison the norm after the fact, as an overflowing backward would: AdamW and the retraction must not move.
        scalars.Read();
        scalars.Begin(fixture.Step.Optimizer.Next(1e-3));
        var slots = fixture.Set.Interventions.SelectMany(i => i.Slots()).ToList();
        var gradient = slots[0].Gradient;
        fixture.Backend.Scale(gradient, double.PositiveInfinity);
        var afterFirst = slots.Select(s => Download(fixture.Backend, s.Parameter)).ToList();
        AdamWOptimizer.ClipGradients(fixture.Set, 1.0, scalars);
        fixture.Step.Optimizer.Apply(fixture.Set, scalars);
        var result = scalars.Read();
        Assert.That(double.IsFinite(result.GradientNorm), Is.False);
        Assert.That(slots.Select(s => Download(fixture.Backend, s.Parameter)), Is.EqualTo(afterFirst), "nothing moved");
        Assert.That(afterFirst, Is.Not.EqualTo(before), "the healthy first step did move them");
    }

    private static float[] Download(IBackend backend, Tensors.Tensor t)
    {
        var values = new float[t.Length];
        backend.Download(t, values);
        return values;
    }

    // A random stories260K-shaped model (no checkpoint needed) with a LoReFT set and a fixed batch.
    private sealed class Fixture : IDisposable
    {
        public Fixture()
        {
            Backend = new CudaBackend(Emulated.Runtime);
            Model = LlamaModel.Random(Shape, Backend);
            Set = InterventionSet.Create(Config, Model, seed: 2);
            Batch = SyntheticBatch.Create(2, 16, Shape.VocabSize);
            Step = new FixedBatchStep(Model, Set, Batch);
        }

        public CudaBackend Backend { get; }

        public LlamaModel Model { get; }

        public InterventionSet Set { get; }

        public ReftBatch Batch { get; }

        public FixedBatchStep Step { get; }

        public void Dispose()
        {
            Step.Dispose();
            Set.Dispose();
            Model.Dispose();
            Backend.Dispose();
        }
    }
}
