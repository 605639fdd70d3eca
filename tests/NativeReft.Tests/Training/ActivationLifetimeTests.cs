using NativeReft.Backends.Cpu;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// What the tape holds once the forward is done: the activations the recorded backwards read. Below the lowest
/// intervened layer nothing is recorded, so those layers, however many, leave nothing behind.
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

    // The tensors a tape holds after the forward of a random stories260K-shaped model of `layers` layers.
    private static int HeldAfterForward(int layers, int[] intervened)
    {
        using var backend = new CpuBackend<float>();
        var config = ModelShapes.Stories260K with { Layers = layers };
        using var model = LlamaModel.Random(config, backend);
        var batch = SyntheticBatch.Create(2, 24, config.VocabSize);
        using var tape = new Tape(backend);
        var plan = new InterventionPlan();
        using var set = intervened.Length == 0 ? null : InterventionSet.Create(
            new ReftConfig { Rank = 2, Layers = intervened, Positions = new PositionSpec(2, 2) }, model, seed: 1);
        if (set is not null)
        {
            plan = ReftObjective.Plan(set, batch, null, tape);
        }
        model.Hidden(tape, batch.Tokens, batch.Size, batch.Positions, batch.Mask, plan);
        return tape.HeldTensors;
    }
}
