using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress(Action<StepReport> report) : IProgress<StepReport>
{
    public void Report(StepReport value) => report(value);

    /// <summary>
    /// Runs <paramref name="trainer"/> for its first <paramref name="steps"/> steps, then stops it (no checkpoint).
    /// On a backend that queues work the trainer also finishes the one step it had queued behind the last.
    /// </summary>
    public static void TrainSteps(ReftTrainer trainer, int steps)
    {
        using var stop = new CancellationTokenSource();
        try
        {
            trainer.Train(null, new SynchronousProgress(r =>
            {
                if (r.Step == steps)
                {
                    stop.Cancel();
                }
            }), stop.Token);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
