namespace NativeReft.Model;

/// <summary>
/// HF <c>rope_scaling</c>: how the RoPE inverse frequencies are rescaled for long context.
/// Supported: none, <c>linear</c> (positions divided by Factor) and <c>llama3</c> (Llama 3.1's wavelength bands).
/// </summary>
/// <param name="Type">"linear" or "llama3".</param>
/// <param name="Factor">The context extension factor.</param>
/// <param name="LowFreqFactor">llama3: wavelengths above original/LowFreqFactor are divided by Factor.</param>
/// <param name="HighFreqFactor">llama3: wavelengths below original/HighFreqFactor are kept.</param>
/// <param name="OriginalMaxPositions">llama3: the pretraining context length.</param>
public sealed record RopeScaling(
    string Type,
    double Factor,
    double LowFreqFactor = 1,
    double HighFreqFactor = 4,
    int OriginalMaxPositions = 8192);
