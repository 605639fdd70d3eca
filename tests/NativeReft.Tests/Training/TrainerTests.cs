using NativeReft.Backends.Cpu;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

public sealed class TrainerTests
{
    private static readonly ReftConfig LoReft = new() { Type = InterventionType.LoReft, Rank = 4, Layers = [0, 2, 4], Positions = new PositionSpec(1, 1) };

    private static readonly TrainingOptions TenSteps = new() { Epochs = 5, BatchSize = 2, GradientAccumulation = 1, LearningRate = 4e-3, Seed = 1 };

    // llm.c's test_gpt2 habit: the first steps of a fixed run, recorded from this implementation after its
    // gradients passed the float64 finite-difference checks. A change to any op's numerics shows up here.
    private static readonly double[] GoldenLosses =
    [
        3.174894392490387, 2.717835307121277, 2.813817799091339, 2.548566744877742, 2.8774226096368607,
        3.150397641318185, 2.914938219131962, 2.83007384884742, 2.171228278766979, 2.3558702217905143,
    ];

    [Test]
    public void Ten_AdamW_steps_follow_the_golden_loss_curve()
    {
        var losses = Train(TenSteps, steps: 10);
        TestContext.Out.WriteLine(string.Join(", ", losses.Select(l => l.ToString("R", System.Globalization.CultureInfo.InvariantCulture))));
        // 1e-5 relative: other SIMD widths round float sums differently; a real change moves losses far more.
        Assert.That(losses, Is.EqualTo(GoldenLosses).Within(1e-3).Percent);
        Assert.That(losses[^1], Is.LessThan(losses[0]), "the loss goes down");
    }

    [Test]
    public void Save_resume_and_continue_gives_the_same_losses_bit_for_bit()
    {
        using var backend = new CpuBackend<float>();
        var (straight, resumed, _) = ResumedRun.Compare(backend, LoReft, TenSteps with { SaveEvery = 3 }, stopAfter: 6);
        Assert.That(resumed, Is.EqualTo(straight), "losses after resuming, bit for bit");
    }

    [Test]
    public void R_stays_orthonormal_after_1000_steps()
    {
        using var backend = new CpuBackend<float>();
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            var config = LoReft with { Layers = [3] };
            using var set = InterventionSet.Create(config, model, seed: 9);
            var options = new TrainingOptions { Epochs = 1000, BatchSize = 1, LearningRate = 1e-2, Seed = 2 };
            var oneExample = NativeReft.Training.ReftDataset.FromPairs("one", [Stories.Pairs[0]], tokenizer, 64);
            var trainer = new ReftTrainer(model, set, oneExample, options);
            trainer.Train();
            Assert.That(trainer.Step, Is.EqualTo(1000));
            var r = backend.Data(set.Interventions[0].Parameters.P);
            int rank = config.Rank, d = model.Config.Dim;
            for (int i = 0; i < rank; i++)
            {
                for (int j = 0; j < rank; j++)
                {
                    double dot = 0;
                    for (int c = 0; c < d; c++)
                    {
                        dot += (double)r[i * d + c] * r[j * d + c];
                    }
                    Assert.That(dot, Is.EqualTo(i == j ? 1.0 : 0.0).Within(1e-5), $"(R R^T)[{i},{j}]");
                }
            }
        }
    }

    [Test]
    public void A_diverging_run_stops_with_a_message_and_keeps_the_last_good_checkpoint()
    {
        using var backend = new CpuBackend<float>();
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            using var set = InterventionSet.Create(LoReft, model, seed: 3);
            var options = new TrainingOptions { Epochs = 20, BatchSize = 5, LearningRate = 1e18, MaxGradNorm = 0, SaveEvery = 1 };
            string checkpoint = Path.Combine(TestData.TempDirectory(), ReftTrainer.CheckpointFile);
            var trainer = new ReftTrainer(model, set, Stories.Dataset(tokenizer), options);
            var e = Assert.Throws<TrainingDivergedException>(() => trainer.Train(checkpoint))!;
            Assert.That(e.Message, Does.Contain("diverged").And.Contain(checkpoint).And.Contain("--lr"));
            Assert.That(trainer.Step, Is.GreaterThan(0), "some steps succeeded before the divergence");
            using var saved = InterventionSet.Load(checkpoint, model); // the last good checkpoint still loads
            var check = new ReftTrainer(model, saved, Stories.Dataset(tokenizer), options);
            check.Resume(checkpoint);
            Assert.That(check.Step, Is.EqualTo(trainer.Step));
            Assert.That(check.Losses, Is.All.Matches<double>(double.IsFinite));
        }
    }

    private static List<double> Train(TrainingOptions options, int steps)
    {
        using var backend = new CpuBackend<float>();
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            using var set = InterventionSet.Create(LoReft, model, seed: 3);
            var trainer = new ReftTrainer(model, set, Stories.Dataset(tokenizer), options);
            SynchronousProgress.TrainSteps(trainer, steps);
            return [.. trainer.Losses.Take(steps)];
        }
    }
}
