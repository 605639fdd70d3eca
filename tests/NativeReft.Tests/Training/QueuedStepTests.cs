using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Reft;
using NativeReft.Tests.Emulator;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// A step queued before the last one was read, as the trainer queues them on a GPU backend: behind a step that
/// diverges it changes nothing, and no step is queued past one that saves a checkpoint, so resuming still gives
/// the same losses bit for bit.
/// </summary>
public sealed class QueuedStepTests
{
    private static readonly ReftConfig LoReft = new() { Type = InterventionType.LoReft, Rank = 4, Layers = [0, 2, 4], Positions = new PositionSpec(1, 1) };

    [TestCase("cpu")]
    [TestCase("emu")]
    public void A_step_queued_behind_a_diverged_one_changes_nothing(string device)
    {
        using var backend = Open(device);
        using var diverged = backend.CreateStepScalars();
        using var behind = backend.CreateStepScalars();
        using var alone = backend.CreateStepScalars();
        var optimizer = new AdamWOptimizer();
        using var logits = backend.Upload([1, float.PositiveInfinity, 3, 0], 1, 4);
        using var dLogits = backend.Zeros(1, 4);

        diverged.Begin(optimizer.Next(0.1));
        backend.CrossEntropy(logits, [2], dLogits, 1, diverged); // an infinite logit: a NaN loss

        float[] start = [0.5f, -0.25f, 1, 2];
        using var parameter = backend.UploadFp32(start, 4);
        using var gradient = backend.UploadFp32([0.1f, 0.2f, -0.3f, 0.4f], 4);
        using var m = backend.ZerosFp32(4);
        using var v = backend.ZerosFp32(4);
        AdamWTarget[] targets = [new(parameter, gradient, m, v, Decay: false)];

        behind.Begin(optimizer.Next(0.1), diverged);
        backend.AdamW(targets, behind);
        Assert.That(double.IsFinite(diverged.Read().Loss), Is.False);
        Assert.That(double.IsFinite(behind.Read().Loss), Is.False, "the step behind reads as diverged too");
        Assert.That(Values(backend, parameter), Is.EqualTo(start), "and left the parameter as it was");

        alone.Begin(optimizer.Next(0.1)); // the control: the same update, not behind the diverged step
        backend.AdamW(targets, alone);
        Assert.That(double.IsFinite(alone.Read().Loss), Is.True);
        Assert.That(Values(backend, parameter), Is.Not.EqualTo(start));
    }

    [Test]
    public void On_a_backend_that_queues_steps_save_resume_and_continue_give_the_same_losses_bit_for_bit()
    {
        using var backend = new CudaBackend(Emulated.Runtime);
        var options = new TrainingOptions { Epochs = 4, BatchSize = 2, LearningRate = 4e-3, Seed = 1, SaveEvery = 2 };
        var (straight, resumed, stoppedAt) = ResumedRun.Compare(backend, LoReft, options, stopAfter: 4);
        Assert.That(stoppedAt, Is.EqualTo(4), "nothing was queued past the step that saved");
        Assert.That(resumed, Is.EqualTo(straight), "losses after resuming, bit for bit");
    }

    private static float[] Values(IBackend backend, Tensors.Tensor t)
    {
        var values = new float[t.Length];
        backend.Download(t, values);
        return values;
    }

    private static IBackend Open(string device) => device == "cpu" ? new CpuBackend<float>() : new CudaBackend(Emulated.Runtime);
}
