namespace NativeReft.Training;

/// <summary>Decay after warmup.</summary>
public enum ScheduleKind
{
    /// <summary>Linear to zero (HF's get_linear_schedule_with_warmup).</summary>
    Linear,
    /// <summary>Half a cosine to zero (HF's get_cosine_schedule_with_warmup).</summary>
    Cosine,
}

/// <summary>Linear warmup from 0 over the first steps, then linear or cosine decay to 0 at the last step.</summary>
public sealed record LearningRateSchedule(double PeakRate, int TotalSteps, int WarmupSteps, ScheduleKind Kind)
{
    /// <summary>The rate of optimizer step <paramref name="step"/> (0-based), as HF's schedulers give it.</summary>
    public double RateAt(int step)
    {
        if (step < WarmupSteps)
        {
            return PeakRate * step / Math.Max(1, WarmupSteps);
        }
        double progress = (double)(step - WarmupSteps) / Math.Max(1, TotalSteps - WarmupSteps);
        return Kind switch
        {
            ScheduleKind.Linear => PeakRate * Math.Max(0, 1 - progress),
            ScheduleKind.Cosine => PeakRate * Math.Max(0, 0.5 * (1 + Math.Cos(Math.PI * progress))),
            _ => throw new ArgumentOutOfRangeException(nameof(step)),
        };
    }
}
