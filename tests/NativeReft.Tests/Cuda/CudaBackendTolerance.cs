using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda;

/// <summary>The tolerance the backend op suite (<see cref="BackendOpsSuite"/>) gives the CUDA backend.</summary>
internal static class CudaBackendTolerance
{
    // The suite's inputs are uploaded as bf16 (8 significant bits: 2^-9 relative each) and outputs stored as bf16,
    // so an output of n products of values ~1 carries about sqrt(n) input roundings of 2^-9 of their size, plus its
    // own rounding: 2^-6 relative and 0.005 sqrt(n) absolute cover that with room, while a wrong index or a missed
    // term is off by O(1).
    public static Tolerance For(int terms) => new(0.005 * Math.Sqrt(terms), 1.0 / 64);
}
