namespace NativeReft.Training;

/// <summary>Training produced a non-finite loss or gradient; nothing was saved for that step.</summary>
public sealed class TrainingDivergedException(string message) : Exception(message);
