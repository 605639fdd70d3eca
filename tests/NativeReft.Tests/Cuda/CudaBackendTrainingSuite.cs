using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Tests.Training;
using NativeReft.Training;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// The CUDA backend against the CPU backend on the real stories260K model: logits, one whole training step (the
/// loss and every intervention gradient, through the tape, every kernel forward and backward, the GEMMs) and a
/// short AdamW run's loss curve. One suite, made concrete per runtime (emulator, checked emulator, GPU).
/// </summary>
/// <remarks>
/// The device computes in bf16 (weights, activations, activation gradients) with fp32 accumulation; the CPU
/// reference gets the same bf16-rounded weights but computes in f32, so the two differ by the device's activation
/// rounding carried through five layers and back. Measured on the emulator: logits 0.6% apart (norm-relative),
/// losses 0.1%, intervention gradients 1-3% (6% for DiReFT's W at layer 1, where W2 g sums small terms that cancel);
/// the bounds are about twice that, far below what a wrong op gives (tens of percent or more).
/// </remarks>
public abstract class CudaBackendTrainingSuite
{
    private static readonly ReftConfig LoReft = new() { Type = InterventionType.LoReft, Rank = 4, Layers = [0, 2, 4], Positions = new PositionSpec(1, 1) };

    private protected abstract IDeviceRuntime Device { get; }

    /// <summary>How many steps the loss-curve test runs (fewer on the slower checked emulator).</summary>
    private protected virtual int CurveSteps => 10;

    [Test]
    public void Logits_match_the_cpu_backend()
    {
        using var cpu = new CpuBackend<float>();
        using var device = new CudaBackend(Device);
        var (_, tokenizer) = Stories.Load(cpu);
        var cpuModel = Stories.LoadRoundedToBFloat16(cpu);
        var (deviceModel, _) = Stories.Load(device);
        using (cpuModel)
        using (deviceModel)
        {
            int[] tokens = [.. tokenizer.Encode("Once upon a time, there was a little girl named Lily.", addBos: true, addEos: false)];
            var expected = Download(cpu, cpuModel.Forward(tokens, 1));
            var actual = Download(device, deviceModel.Forward(tokens, 1));
            TestContext.Out.WriteLine($"logits: norm-relative error {RelativeError(actual, expected):G3}");
            Assert.That(RelativeError(actual, expected), Is.LessThan(0.02), "logits, norm-relative");
            int vocab = cpuModel.Config.VocabSize, agree = 0;
            for (int t = 0; t < tokens.Length; t++)
            {
                agree += ArgMax(actual, t, vocab) == ArgMax(expected, t, vocab) ? 1 : 0;
            }
            Assert.That(agree, Is.GreaterThanOrEqualTo(tokens.Length - 1), "greedy next token at each position");
        }
    }

    [TestCase(InterventionType.LoReft, 0.0)]
    [TestCase(InterventionType.DiReft, 0.0)]
    [TestCase(InterventionType.LoReft, 0.2)] // the same dropout masks on both backends (counter-based)
    public void One_training_step_matches_the_cpu_backend(InterventionType type, double dropout)
    {
        using var cpu = new CpuBackend<float>();
        using var device = new CudaBackend(Device);
        var (_, tokenizer) = Stories.Load(cpu);
        var cpuModel = Stories.LoadRoundedToBFloat16(cpu);
        var (deviceModel, _) = Stories.Load(device);
        using (cpuModel)
        using (deviceModel)
        {
            Assert.That(deviceModel.Fingerprint, Is.EqualTo(cpuModel.Fingerprint), "one fingerprint whatever the backend");
            var config = LoReft with { Type = type, Layers = [0, 1, 2, 3, 4], Positions = new PositionSpec(2, 1) };
            var data = Stories.Dataset(tokenizer);
            var batch = new ReftBatch([data.Examples[0], data.Examples[1], data.Examples[2]]);
            var masks = dropout > 0 ? new DropoutMasks(dropout, seed: 11, step: 1, microBatch: 0) : null;
            AssertOneStepMatches(config, cpuModel, deviceModel, batch, masks);
        }
    }

    // One forward and backward on both backends from the same intervention parameters: the summed loss within
    // 0.5%, every intervention gradient within 10% (norm-relative).
    private static void AssertOneStepMatches(ReftConfig config, LlamaModel cpuModel, LlamaModel deviceModel, ReftBatch batch,
        DropoutMasks? masks = null)
    {
        using var cpuSet = InterventionSet.Create(config, cpuModel, seed: 7);
        using var deviceSet = InterventionSet.Create(config, deviceModel, seed: 7);
        CopyParameters(cpuSet, deviceSet);
        double scale = 1.0 / batch.Targets.Length;
        cpuSet.ZeroGradients();
        deviceSet.ZeroGradients();
        double expectedLoss = ReftObjective.ForwardBackward(cpuModel, cpuSet, batch, scale, masks);
        double loss = ReftObjective.ForwardBackward(deviceModel, deviceSet, batch, scale, masks);

        Assert.That(loss, Is.EqualTo(expectedLoss).Within(0.5).Percent, "summed loss");
        foreach (var (c, d) in cpuSet.Interventions.SelectMany(i => i.Slots()).Zip(deviceSet.Interventions.SelectMany(i => i.Slots())))
        {
            var expected = Download(cpuModel.Backend, c.Gradient);
            var actual = Download(deviceModel.Backend, d.Gradient);
            Assert.That(expected, Has.Some.Not.EqualTo(0f), $"{c.Name} receives a gradient");
            Assert.That(RelativeError(actual, expected), Is.LessThan(0.1), $"{c.Name} gradient, norm-relative");
        }
    }

    // A model with head size 64 (stories260K's is 8), so that the step's attention runs on the tensor-core kernels
    // (flash_attention.cu) under AttentionPath.Auto; 48 tokens per sequence: a partial 128-row block.
    private static readonly LlamaConfig HeadSize64 = ModelShapes.TinyHeadSize64;

    [TestCase(AttentionPath.Auto)]
    [TestCase(AttentionPath.Direct)]
    public void One_training_step_at_head_size_64_matches_the_cpu_backend(AttentionPath path)
    {
        using var cpu = new CpuBackend<float>();
        using var device = new CudaBackend(Device) { AttentionPath = path };
        var batch = SyntheticBatch.Create(3, 48, HeadSize64.VocabSize);
        var shape = new AttentionShape(3, 48, 48, 48, 0, HeadSize64.Heads, HeadSize64.KvHeads, HeadSize64.HeadSize);
        if (path == AttentionPath.Auto && device.TensorCoreAttentionProblem(shape) is { } problem)
        {
            Assert.Ignore(problem);
        }
        var weights = RandomBFloat16Weights(HeadSize64, seed: 5);
        using var cpuModel = LlamaModel.FromWeights(HeadSize64, weights, cpu);
        using var deviceModel = LlamaModel.FromWeights(HeadSize64, weights, device);
        AssertOneStepMatches(LoReft with { Layers = [0, 1], Positions = new PositionSpec(3, 2) }, cpuModel, deviceModel, batch);
    }

    // Uniform in +-1/sqrt(fan-in), rounded to bf16 (what the device stores), norms 1.
    private static Dictionary<string, float[]> RandomBFloat16Weights(LlamaConfig config, int seed)
    {
        var random = new Random(seed);
        return WeightNames.Expected(config).ToDictionary(w => w.Name, w =>
        {
            int length = w.Shape.Aggregate(1, (a, b) => a * b);
            float bound = 1 / MathF.Sqrt(w.Shape[^1]);
            return w.Shape.Length == 1
                ? Enumerable.Repeat(1f, length).ToArray()
                : Enumerable.Range(0, length).Select(_ => Tensors.BFloat16.FromFloat((float)(random.NextDouble() * 2 - 1) * bound).ToFloat()).ToArray();
        });
    }

    [Test]
    public void AdamW_steps_follow_the_cpu_loss_curve_and_keep_R_orthonormal()
    {
        var options = new TrainingOptions { Epochs = 20, BatchSize = 2, LearningRate = 4e-3, Seed = 1 };
        var expected = Train(new CpuBackend<float>(), options, CurveSteps, out _);
        var actual = Train(new CudaBackend(Device), options, CurveSteps, out var gram);
        TestContext.Out.WriteLine($"cpu    {string.Join(", ", expected.Select(l => l.ToString("F4")))}");
        TestContext.Out.WriteLine($"device {string.Join(", ", actual.Select(l => l.ToString("F4")))}");
        Assert.That(actual, Has.Count.EqualTo(CurveSteps));
        for (int i = 0; i < actual.Count; i++)
        {
            Assert.That(actual[i], Is.EqualTo(expected[i]).Within(2).Percent, $"loss at step {i + 1}");
        }
        Assert.That(gram, Is.LessThan(1e-5), "max |R R^T - I| after the device's retractions");
    }

    [Test]
    public void A_captured_step_replays_the_eager_steps_bit_for_bit()
    {
        using var device = new CudaBackend(Device);
        var (model, tokenizer) = Stories.Load(device);
        using (model)
        {
            var data = Stories.Dataset(tokenizer);
            var batch = new ReftBatch([data.Examples[0], data.Examples[1]]);
            using var eagerSet = InterventionSet.Create(LoReft, model, seed: 5);
            using var graphSet = InterventionSet.Create(LoReft, model, seed: 5);
            using var referenceSet = InterventionSet.Create(LoReft, model, seed: 5);
            using var eager = new FixedBatchStep(model, eagerSet, batch);
            using var graphed = new FixedBatchStep(model, graphSet, batch);
            double[] rates = [2e-2, 4e-2, 1e-2, 3e-2];

            var expected = rates.Select(eager.Run).ToList();
            var actual = new List<StepResult> { graphed.Run(rates[0]) };
            using (var captured = device.CaptureStep(graphed.Scalars, graphed.Queue))
            {
                Assert.That(captured.ReservedBytes, Is.GreaterThan(0), "the graph keeps its activations' blocks");
                foreach (double rate in rates.Skip(1))
                {
                    captured.Run(graphed.Optimizer.Next(rate));
                    actual.Add(graphed.Scalars.Read());
                }
            }

            Assert.That(expected.Select(r => r.Loss).Distinct().Count(), Is.EqualTo(rates.Length), "every step changes the loss");
            Assert.That(actual, Is.EqualTo(expected), "losses and gradient norms, replayed against run op by op");
            foreach (var (e, g) in eagerSet.Interventions.SelectMany(i => i.Slots()).Zip(graphSet.Interventions.SelectMany(i => i.Slots())))
            {
                Assert.That(Download(device, g.Parameter), Is.EqualTo(Download(device, e.Parameter)), $"{e.Name} after {rates.Length} steps");
                Assert.That(Download(device, g.V), Is.EqualTo(Download(device, e.V)), $"{e.Name}'s second moment");
            }
            // The loss kept on the device is the one the host-summing path returns, to the bit.
            referenceSet.ZeroGradients();
            double direct = ReftObjective.ForwardBackward(model, referenceSet, batch, 1.0 / batch.Targets.Length);
            Assert.That(expected[0].Loss, Is.EqualTo(direct), "the first step's loss");
        }
    }

    private static List<double> Train(IBackend backend, TrainingOptions options, int steps, out double gramError)
    {
        using (backend)
        {
            var (model, tokenizer) = Stories.Load(backend);
            if (backend is CpuBackend<float>)
            {
                model.Dispose();
                model = Stories.LoadRoundedToBFloat16(backend);
            }
            using (model)
            {
                using var set = InterventionSet.Create(LoReft, model, seed: 3);
                if (backend is not CpuBackend<float>)
                {
                    using var cpu = new CpuBackend<float>();
                    var (cpuModel, _) = Stories.Load(cpu);
                    using (cpuModel)
                    {
                        using var reference = InterventionSet.Create(LoReft, cpuModel, seed: 3);
                        CopyParameters(reference, set); // the same start on both backends
                    }
                }
                var trainer = new ReftTrainer(model, set, Stories.Dataset(tokenizer), options);
                SynchronousProgress.TrainSteps(trainer, steps);
                gramError = set.Interventions.Max(i => GramError(Download(backend, i.Parameters.P), i.Parameters.Rank));
                return [.. trainer.Losses.Take(steps)]; // a backend that queues work also finished the step queued behind
            }
        }
    }

    private static void CopyParameters(InterventionSet from, InterventionSet to)
    {
        foreach (var (source, target) in from.Interventions.SelectMany(i => i.Slots()).Zip(to.Interventions.SelectMany(i => i.Slots())))
        {
            var values = Download(source.Parameter.Backend, source.Parameter);
            using var uploaded = target.Parameter.Backend.UploadFp32(values, target.Parameter.Shape.ToArray());
            target.Parameter.Backend.Copy(uploaded, target.Parameter);
        }
    }

    private static float[] Download(IBackend backend, Tensors.Tensor t)
    {
        var values = new float[t.Length];
        backend.Download(t, values);
        return values;
    }

    // A NaN anywhere makes these errors infinite: NUnit orders NaN below every number, so Is.LessThan would pass it.
    private static double Finite(double error) => double.IsNaN(error) ? double.PositiveInfinity : error;

    private static double RelativeError(float[] actual, float[] expected)
    {
        double difference = 0, norm = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            difference += Math.Pow(actual[i] - expected[i], 2);
            norm += Math.Pow(expected[i], 2);
        }
        return Finite(Math.Sqrt(difference / Math.Max(norm, 1e-30)));
    }

    private static int ArgMax(float[] logits, int row, int vocab)
    {
        int best = 0;
        for (int i = 1; i < vocab; i++)
        {
            best = logits[row * vocab + i] > logits[row * vocab + best] ? i : best;
        }
        return best;
    }

    private static double GramError(float[] r, int rank)
    {
        int d = r.Length / rank;
        double worst = 0;
        for (int i = 0; i < rank; i++)
        {
            for (int j = 0; j < rank; j++)
            {
                double dot = 0;
                for (int c = 0; c < d; c++)
                {
                    dot += (double)r[i * d + c] * r[j * d + c];
                }
                worst = Math.Max(worst, Math.Abs(dot - (i == j ? 1 : 0)));
            }
        }
        return Finite(worst);
    }
}
