using System.Globalization;
using NativeReft.Training;

namespace NativeReft.Cli.Commands;

/// <summary>
/// Training progress on stderr: one line redrawn in place on a terminal, or about twenty lines in a log
/// (redirected output), each with step, loss, learning rate, tokens/s and ETA.
/// </summary>
internal sealed class ProgressBar(TextWriter error, bool interactive) : IProgress<StepReport>
{
    public void Report(StepReport r)
    {
        ArgumentNullException.ThrowIfNull(r);
        int every = Math.Max(1, r.TotalSteps / 20);
        if (!interactive && r.Step != 1 && r.Step != r.TotalSteps && r.Step % every != 0)
        {
            return;
        }
        const int width = 24;
        int filled = (int)((long)width * r.Step / r.TotalSteps);
        string line = string.Create(CultureInfo.InvariantCulture,
            $"step {r.Step}/{r.TotalSteps} [{new string('#', filled)}{new string('.', width - filled)}] epoch {r.Epoch} loss {r.Loss:F4} lr {r.LearningRate:0.0e+00} {r.TokensPerSecond:N0} tok/s ETA {r.Remaining:h\\:mm\\:ss}");
        if (interactive)
        {
            error.Write("\r" + line);
            if (r.Step == r.TotalSteps)
            {
                error.WriteLine();
            }
        }
        else
        {
            error.WriteLine(line);
        }
        error.Flush();
    }
}
