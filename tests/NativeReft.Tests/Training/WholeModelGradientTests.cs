using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Reft;
using NativeReft.Tests.Backends;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// d(loss)/d(P, W, b) through the whole stories260K model (tape, every backward op, the interventions), against
/// central finite differences in float64.
/// </summary>
public sealed class WholeModelGradientTests
{
    [TestCase(InterventionType.LoReft, true)]
    [TestCase(InterventionType.NoReft, false)]
    [TestCase(InterventionType.ConsReft, true)]
    [TestCase(InterventionType.DiReft, false)]
    public void Intervention_gradients_match_finite_differences(InterventionType type, bool tied)
    {
        using var backend = new CpuBackend<double>();
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            var config = new ReftConfig { Type = type, Rank = 2, Layers = [1, 3], Positions = new PositionSpec(2, 1), Tied = tied };
            using var set = InterventionSet.Create(config, model, seed: 5);
            var data = Stories.Dataset(tokenizer);
            var batch = new ReftBatch([data.Examples[0], data.Examples[1]]);
            double labelled = batch.Targets.Length;
            set.ZeroGradients();
            ReftObjective.ForwardBackward(model, set, batch, 1 / labelled);
            double Loss() => ReftObjective.Loss(model, set, batch) / labelled;

            foreach (var intervention in set.Interventions)
            {
                foreach (var slot in intervention.Slots())
                {
                    double[] parameter = backend.Data(slot.Parameter);
                    double[] gradient = backend.Data(slot.Gradient);
                    Assert.That(gradient, Has.Some.Not.EqualTo(0.0), $"{slot.Name} received a gradient");
                    GradientCheck.AssertMatches(slot.Name, parameter, gradient, Loss, stride: 7);
                }
            }
        }
    }
}
