namespace NativeReft;

/// <summary>
/// A user-facing error in what was asked for (a prompt, an option value, a data record), as opposed to a bug:
/// the CLI prints its message without a stack trace.
/// </summary>
public sealed class InputException : Exception
{
    /// <summary>Creates the error with a message that says what is wrong and what to do.</summary>
    public InputException(string message, Exception? inner = null)
        : base(message, inner)
    {
    }
}
