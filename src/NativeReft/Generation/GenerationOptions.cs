namespace NativeReft.Generation;

/// <summary>How <see cref="Generator"/> continues a prompt.</summary>
public sealed record GenerationOptions
{
    /// <summary>Positions to run, prompt included, as llama2.c's <c>-n</c> (BOS is position 0).</summary>
    public int MaxTokens { get; init; } = 256;

    /// <summary>0 is greedy.</summary>
    public float Temperature { get; init; } = 1.0f;

    /// <summary>Nucleus sampling threshold; 1 samples from the whole distribution.</summary>
    public float TopP { get; init; } = 0.9f;

    /// <summary>Random seed for sampling.</summary>
    public ulong Seed { get; init; } = 42;
}
