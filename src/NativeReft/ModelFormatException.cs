namespace NativeReft;

/// <summary>
/// A user-facing error in an input file (a checkpoint, a tokenizer, a config): the message names the file and
/// what is wrong with it, so the CLI prints it without a stack trace.
/// </summary>
public sealed class ModelFormatException : Exception
{
    /// <summary>Creates the error for <paramref name="path"/> with a message that says what is wrong.</summary>
    public ModelFormatException(string path, string problem, Exception? inner = null)
        : base($"{path}: {problem}", inner)
    {
        Path = path;
        Problem = problem;
    }

    /// <summary>The file (or directory) that is at fault.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it, without the path.</summary>
    public string Problem { get; }
}
