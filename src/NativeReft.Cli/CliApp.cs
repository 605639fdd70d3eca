using System.CommandLine;
using NativeReft.Cli.Commands;

namespace NativeReft.Cli;

/// <summary>
/// The <c>nativereft</c> command: parses, runs one subcommand, and turns user errors (bad files, bad options)
/// into one line on stderr and exit code 1; bugs still show their stack trace.
/// </summary>
public static class CliApp
{
    /// <summary>Runs the command line <paramref name="args"/>, writing to the given streams; returns the exit code.</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var root = new RootCommand("NativeReft: train and serve ReFT interventions on LLaMA models.")
        {
            QuickstartCommand.Create(output, error),
            GenerateCommand.Create(output, error),
            TrainCommand.Create(output, error),
            EvalCommand.Create(output, error),
            DoctorCommand.Create(output, error),
            BenchCommand.Create(output, error),
        };
        var parsed = root.Parse(args);
        try
        {
            return parsed.Invoke(new InvocationConfiguration
            {
                Output = output,
                Error = error,
                EnableDefaultExceptionHandler = false,
            });
        }
        catch (Exception e) when (e is ModelFormatException or InputException or Training.TrainingDivergedException)
        {
            output.Flush();
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
        catch (Cuda.DeviceOutOfMemoryException e)
        {
            output.Flush();
            error.WriteLine($"error: {e.Message}. Use a smaller batch (--batch-size, --batch) or shorter sequences (--max-length, --seq), or intervene on fewer layers; checkpoints already written are intact.");
            return 1;
        }
    }
}
