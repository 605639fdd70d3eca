namespace NativeReft.Training;

/// <summary>
/// One tokenized training example: the prompt (BOS first) whose positions are intervened on, then the response
/// and EOS, which are the only labelled tokens.
/// </summary>
/// <param name="Tokens">Prompt tokens, then response tokens and EOS.</param>
/// <param name="PromptLength">How many leading tokens are prompt (BOS included).</param>
/// <param name="Line">The data file line it came from, for messages.</param>
public sealed record ReftExample(int[] Tokens, int PromptLength, int Line)
{
    /// <summary>Tokens that carry a label (the response and EOS).</summary>
    public int LabelledTokens => Tokens.Length - PromptLength;
}
