using NativeReft.Backends;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// A run trained straight through beside the same run stopped by cancellation after a step, resumed from its
/// checkpoint and continued: resuming is bit for bit when the two loss lists are equal.
/// </summary>
internal static class ResumedRun
{
    /// <summary>The straight run's losses, the resumed run's, and the step the stopped run had reached.</summary>
    public static (IReadOnlyList<double> Straight, IReadOnlyList<double> Resumed, int StoppedAt) Compare(
        IBackend backend, ReftConfig config, TrainingOptions options, int stopAfter)
    {
        var (model, tokenizer) = Stories.Load(backend);
        using (model)
        {
            var data = Stories.Dataset(tokenizer);
            string checkpoint = Path.Combine(TestData.TempDirectory(), ReftTrainer.CheckpointFile);

            using var straight = InterventionSet.Create(config, model, seed: 3);
            var reference = new ReftTrainer(model, straight, data, options);
            reference.Train();

            using var first = InterventionSet.Create(config, model, seed: 3);
            var interrupted = new ReftTrainer(model, first, data, options);
            using var stop = new CancellationTokenSource();
            var progress = new SynchronousProgress(r =>
            {
                if (r.Step == stopAfter)
                {
                    stop.Cancel();
                }
            });
            Assert.Throws<OperationCanceledException>(() => interrupted.Train(checkpoint, progress, stop.Token));

            using var restored = InterventionSet.Load(checkpoint, model);
            var resumed = new ReftTrainer(model, restored, data, options);
            resumed.Resume(checkpoint);
            Assert.That(resumed.Step, Is.EqualTo(stopAfter), "the checkpoint holds the step the run stopped after");
            resumed.Train(checkpoint);
            return (reference.Losses, resumed.Losses, interrupted.Step);
        }
    }
}
