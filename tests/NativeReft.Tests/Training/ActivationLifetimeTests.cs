using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Tests.Emulator;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// What the tape holds once the forward is done: the activations the recorded backwards read. Below the lowest
/// intervened layer nothing is recorded, so those layers, however many, leave nothing behind; evaluation records
/// nothing at all.
/// </summary>
public sealed class ActivationLifetimeTests
{
    [Test]
    public void Layers_below_the_lowest_intervened_keep_no_activations()
    {
        int[] held = [.. Enumerable.Range(1, 4).Select(layers => HeldAfterForward(layers, intervened: [layers - 1]))];
        Assert.That(held, Is.All.EqualTo(held[0]), "tensors held with the last of 1, 2, 3 and 4 layers intervened");
    }

    [Test]
    public void A_recorded_layer_keeps_what_its_backward_reads()
    {
        int one = HeldAfterForward(3, intervened: [2]);
        int two = HeldAfterForward(3, intervened: [1, 2]);
        Assert.That(two, Is.GreaterThan(one), "layer 2's activations, read by its backward, are kept once layer 1 is intervened");
    }

    [Test]
    public void A_forward_without_interventions_keeps_nothing_but_its_output()
    {
        Assert.That(HeldAfterForward(4, intervened: []), Is.EqualTo(1), "the final norm's output");
    }

    [Test]
    public void Evaluation_memory_does_not_grow_with_the_layers()
    {
        long two = EvaluationBytes(2), four = EvaluationBytes(4);
        TestContext.Progress.WriteLine($"an evaluation beyond the weights: {two:N0} bytes with 2 layers, {four:N0} with 4");
        Assert.That(two, Is.GreaterThan(0));
        Assert.That(four, Is.EqualTo(two), "device memory an evaluation takes beyond the weights, every layer intervened");
    }

    // The most device memory (emulator, a pool of its own) ReftObjective.Loss holds beyond the model and interventions.
    private static long EvaluationBytes(int layers)
    {
        using var runtime = Emulated.OpenSeparate();
        using var backend = new CudaBackend(runtime);
        var config = ModelShapes.Stories260K with { Layers = layers };
        using var model = LlamaModel.Random(config, backend);
        using var set = InterventionSet.Create(
            new ReftConfig { Rank = 2, Layers = [.. Enumerable.Range(0, layers)], Positions = new PositionSpec(2, 2) }, model, seed: 1);
        var batch = SyntheticBatch.Create(2, 24, config.VocabSize);
        var pool = runtime.Pool;
        long before = pool.BytesInUse;
        pool.ResetPeak();
        double loss = ReftObjective.Loss(model, set, batch);
        Assert.That(double.IsFinite(loss), $"loss {loss}");
        return pool.PeakBytesInUse - before;
    }

    // The tensors a tape holds after the forward of a random stories260K-shaped model of `layers` layers.
    private static int HeldAfterForward(int layers, int[] intervened)
    {
        using var backend = new CpuBackend<float>();
        var config = ModelShapes.Stories260K with { Layers = layers };
        using var model = LlamaModel.Random(config, backend);
        var batch = SyntheticBatch.Create(2, 24, config.VocabSize);
        using var tape = new Tape(backend);
        using var set = intervened.Length == 0 ? null : InterventionSet.Create(
            new ReftConfig { Rank = 2, Layers = intervened, Positions = new PositionSpec(2, 2) }, model, seed: 1);
        var plan = set is null ? new InterventionPlan() : ReftObjective.Plan(set, batch, null, tape);
        model.Hidden(tape, batch.Tokens, batch.Size, batch.Positions, batch.Mask, plan);
        return tape.HeldTensors;
    }
}
