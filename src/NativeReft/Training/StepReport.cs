namespace NativeReft.Training;

/// <summary>What one optimizer step did, for progress display.</summary>
/// <param name="Step">Steps done (1-based).</param>
/// <param name="TotalSteps">Steps in the whole run.</param>
/// <param name="Epoch">Current epoch (1-based).</param>
/// <param name="Loss">Mean cross-entropy per labelled token.</param>
/// <param name="LearningRate">The rate used.</param>
/// <param name="GradientNorm">Global gradient norm before clipping.</param>
/// <param name="TokensPerSecond">Real (unpadded) tokens processed per second since the run started.</param>
/// <param name="Remaining">Estimated time to the end.</param>
public sealed record StepReport(int Step, int TotalSteps, int Epoch, double Loss, double LearningRate, double GradientNorm,
    double TokensPerSecond, TimeSpan Remaining);
