using System.Diagnostics;

namespace NativeReft.Tests;

/// <summary>Runs a program to its end for a test, reading both output streams at once (a full pipe would block it).</summary>
internal static class ExternalProcess
{
    public static (int Exit, string Stdout, string Stderr) Run(ProcessStartInfo start)
    {
        start.RedirectStandardOutput = true;
        start.RedirectStandardError = true;
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, stdout, stderr.Result);
    }
}
