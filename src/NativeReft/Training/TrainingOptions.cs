namespace NativeReft.Training;

/// <summary>How <see cref="ReftTrainer"/> optimizes (the CLI's defaults).</summary>
public sealed record TrainingOptions
{
    /// <summary>Passes over the data.</summary>
    public int Epochs { get; init; } = 1;

    /// <summary>Examples per forward pass.</summary>
    public int BatchSize { get; init; } = 4;

    /// <summary>Forward passes per optimizer step.</summary>
    public int GradientAccumulation { get; init; } = 1;

    /// <summary>Peak learning rate.</summary>
    public double LearningRate { get; init; } = 9e-4;

    /// <summary>AdamW decoupled weight decay (not applied to orthonormal R).</summary>
    public double WeightDecay { get; init; }

    /// <summary>Fraction of the steps spent warming up.</summary>
    public double WarmupRatio { get; init; }

    /// <summary>Decay after warmup.</summary>
    public ScheduleKind Schedule { get; init; } = ScheduleKind.Linear;

    /// <summary>Global gradient-norm clip (0: none).</summary>
    public double MaxGradNorm { get; init; } = 1.0;

    /// <summary>Seeds data order, initialisation and dropout.</summary>
    public int Seed { get; init; } = 42;

    /// <summary>Checkpoint every this many optimizer steps (and at the end).</summary>
    public int SaveEvery { get; init; } = 100;

    /// <summary>Throws an <see cref="InputException"/> naming the first bad setting.</summary>
    public void Validate()
    {
        void Require(bool ok, string message)
        {
            if (!ok)
            {
                throw new InputException(message);
            }
        }
        Require(Epochs > 0, $"--epochs must be positive (got {Epochs})");
        Require(BatchSize > 0, $"--batch-size must be positive (got {BatchSize})");
        Require(GradientAccumulation > 0, $"--grad-accum must be positive (got {GradientAccumulation})");
        Require(LearningRate > 0 && double.IsFinite(LearningRate), $"--lr must be a positive number (got {LearningRate})");
        Require(WeightDecay >= 0, $"--weight-decay must be >= 0 (got {WeightDecay})");
        Require(WarmupRatio is >= 0 and < 1, $"--warmup-ratio must be in [0, 1) (got {WarmupRatio})");
        Require(MaxGradNorm >= 0, $"--max-grad-norm must be >= 0 (got {MaxGradNorm})");
        Require(SaveEvery > 0, $"--save-every must be positive (got {SaveEvery})");
    }
}
