using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// "No host synchronisation inside a step", checked: the emulator counts every call that makes (or may make) a
/// GPU's host wait for its device (<see cref="EmulatorRuntime.HostWaits"/>), and a training step queued as the
/// trainer queues it, dropout included, must make none before its scalars are read.
/// </summary>
public sealed class HostWaitTests
{
    [TestCase(0.0)]
    [TestCase(0.1)]
    public void A_training_step_waits_for_the_device_only_when_its_loss_is_read(double dropout)
    {
        var shape = ModelShapes.Stories260K;
        var config = new ReftConfig { Rank = 2, Layers = [1, 3], Positions = new PositionSpec(2, 2), Dropout = dropout };
        var runtime = Emulated.Runtime;
        using var backend = new CudaBackend(runtime);
        using var model = LlamaModel.Random(shape, backend);
        using var set = InterventionSet.Create(config, model, seed: 2);
        var batch = SyntheticBatch.Create(2, 16, shape.VocabSize);
        var optimizer = new AdamWOptimizer();
        using var scalars = backend.CreateStepScalars();
        backend.Synchronize();

        for (int step = 0; step < 2; step++) // the second with the memory pool and the upload ring warm
        {
            long before = runtime.HostWaits;
            scalars.Begin(optimizer.Next(1e-3));
            set.ZeroGradients();
            var masks = dropout > 0 ? new DropoutMasks(dropout, seed: 5, step, microBatch: 0) : null;
            ReftObjective.ForwardBackward(model, set, batch, 1.0 / batch.Targets.Length, masks, scalars);
            AdamWOptimizer.ClipGradients(set, 1.0, scalars);
            optimizer.Apply(set, scalars);
            Assert.That(runtime.HostWaits - before, Is.Zero, $"host waits while step {step + 1} was queued");

            var result = scalars.Read();
            Assert.That(double.IsFinite(result.Loss), Is.True);
            Assert.That(runtime.HostWaits, Is.GreaterThan(before), "reading the step's scalars waits (the count counts)");
        }
    }
}
