using NativeReft.Backends.Cpu;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

public sealed class ReftUnitTests
{
    [TestCase("f7+l7", 20, new[] { 0, 1, 2, 3, 4, 5, 6 }, new[] { 13, 14, 15, 16, 17, 18, 19 })]
    [TestCase("f7+l7", 9, new[] { 0, 1, 2, 3 }, new[] { 5, 6, 7, 8 })] // each clamped to len / 2 = 4
    [TestCase("f1+l1", 1, new int[0], new int[0])]                      // a 1-token prompt has no room
    [TestCase("l3", 10, new int[0], new[] { 7, 8, 9 })]
    public void Positions_follow_pyrefts_clamping(string spec, int length, int[] first, int[] last)
    {
        var p = PositionSpec.Parse(spec);
        Assert.That(p.FirstPositions(length), Is.EqualTo(first));
        Assert.That(p.LastPositions(length), Is.EqualTo(last));
        Assert.That(p.ToString(), Is.EqualTo(spec));
    }

    [Test]
    public void Tied_interventions_cover_both_sides_and_untied_ones_split_them()
    {
        var tied = new ReftConfig { Layers = [0], Positions = new PositionSpec(2, 2), Tied = true };
        var untied = tied with { Tied = false };
        Assert.That(tied.Sides(), Is.EqualTo(new[] { "all" }));
        Assert.That(tied.PositionsOf("all", 10), Is.EqualTo(new[] { 0, 1, 8, 9 }));
        Assert.That(untied.Sides(), Is.EqualTo(new[] { "first", "last" }));
        Assert.That(untied.PositionsOf("first", 10), Is.EqualTo(new[] { 0, 1 }));
        Assert.That(untied.PositionsOf("last", 10), Is.EqualTo(new[] { 8, 9 }));
    }

    [Test]
    public void Overlapping_interventions_at_one_layer_are_rejected()
    {
        using var backend = new CpuBackend<float>();
        var (config, weights) = NativeReft.Tests.Model.TinyModels.Random(seed: 1);
        using var model = NativeReft.Model.LlamaModel.FromWeights(config, weights, backend);
        using var set = InterventionSet.Create(new ReftConfig { Layers = [1], Positions = new PositionSpec(2, 2), Tied = false }, model, 1);
        var plan = new InterventionPlan();
        plan.Add(new AppliedIntervention(set.Interventions[0], [0, 1], null));
        var e = Assert.Throws<InputException>(() => plan.Add(new AppliedIntervention(set.Interventions[1], [1, 5], null)))!;
        Assert.That(e.Message, Does.Contain("overlap").And.Contain("layer 1"));
    }

    [Test]
    public void The_config_survives_its_json_form()
    {
        var config = new ReftConfig
        {
            Type = InterventionType.DiReftOrtho, Rank = 8, Layers = [2, 10, 18], Positions = new PositionSpec(3, 0), Tied = false,
            Activation = NativeReft.Backends.Activation.Silu, Dropout = 0.05, Dim = 4096, BaseModel = "0123456789abcdef",
        };
        var back = ReftConfigJson.Read(ReftConfigJson.Write(config), "test");
        Assert.That(back with { Layers = config.Layers }, Is.EqualTo(config));
        Assert.That(back.Layers, Is.EqualTo(config.Layers));
        var e = Assert.Throws<ModelFormatException>(() => ReftConfigJson.Read("""{"format": "pyreft"}""", "x.json"))!;
        Assert.That(e.Message, Does.Contain("x.json").And.Contain("pyreft"));
    }

    [TestCase(ScheduleKind.Linear, 0, 0.0)]
    [TestCase(ScheduleKind.Linear, 2, 0.5)]     // half way through a 4-step warmup
    [TestCase(ScheduleKind.Linear, 4, 1.0)]     // peak
    [TestCase(ScheduleKind.Linear, 7, 0.5)]     // half way down the 6 remaining steps
    [TestCase(ScheduleKind.Cosine, 7, 0.5)]     // cos(pi / 2) is the middle of the cosine too
    [TestCase(ScheduleKind.Cosine, 5, 0.9330127018922193)]
    public void The_schedule_warms_up_then_decays(ScheduleKind kind, int step, double fraction)
    {
        var schedule = new LearningRateSchedule(1e-3, TotalSteps: 10, WarmupSteps: 4, kind);
        Assert.That(schedule.RateAt(step), Is.EqualTo(1e-3 * fraction).Within(1e-15));
    }

    [Test]
    public void Dropout_masks_are_reproducible_scaled_and_about_the_right_fraction()
    {
        using var backend = new CpuBackend<float>();
        using var tape = new Tape(backend);
        float[] Mask(long step) => backend.Data(new DropoutMasks(0.25, 7, step, 0).Create(tape, 0, 40, 50));
        var a = Mask(3);
        Assert.That(Mask(3), Is.EqualTo(a), "same seed, step and position: same mask");
        Assert.That(Mask(4), Is.Not.EqualTo(a));
        Assert.That(a, Is.All.EqualTo(0f).Or.EqualTo(1f / 0.75f));
        Assert.That(a.Count(x => x == 0) / (double)a.Length, Is.EqualTo(0.25).Within(0.05));
    }

    [Test]
    public void Accumulating_two_micro_batches_gives_the_gradient_of_one_batch_of_both()
    {
        using var backend = new CpuBackend<double>();
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            var config = new ReftConfig { Rank = 2, Layers = [2], Positions = new PositionSpec(1, 1) };
            using var set = InterventionSet.Create(config, model, seed: 4);
            var examples = Stories.Dataset(tokenizer).Examples;
            double labelled = examples[0].LabelledTokens + examples[1].LabelledTokens;

            set.ZeroGradients();
            ReftObjective.ForwardBackward(model, set, new ReftBatch([examples[0], examples[1]]), 1 / labelled);
            var together = backend.Data(set.Interventions[0].Gradients.P).ToArray();

            set.ZeroGradients();
            ReftObjective.ForwardBackward(model, set, new ReftBatch([examples[0]]), 1 / labelled);
            ReftObjective.ForwardBackward(model, set, new ReftBatch([examples[1]]), 1 / labelled);
            Assert.That(backend.Data(set.Interventions[0].Gradients.P), Is.EqualTo(together).Within(1e-12),
                "padding does not leak into the gradient, and micro-batches add up");
        }
    }
}
