namespace NativeReft.Backends;

/// <summary>
/// Counter-based random numbers: value i of a stream is a function of (seed, i) alone, so any order of
/// generation, any backend and a resumed run give the same numbers (dropout masks, random weights). kernels/
/// elementwise.cu computes the same function on the device.
/// </summary>
public static class CounterHash
{
    /// <summary>splitmix64's finalizer: a good 64-bit mix of a counter.</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>
    /// Whether dropout drops element <paramref name="i"/> of <paramref name="stream"/>: u &lt; probability, u the top
    /// 53 bits of Mix(stream + i) as a double in [0, 1) (exact, so a GPU kernel draws the same masks).
    /// </summary>
    public static bool Drops(ulong stream, long i, double probability) =>
        (Mix(stream + (ulong)i) >> 11) * (1.0 / (1UL << 53)) < probability;

    /// <summary>Uniform in [-scale, scale): the top 24 bits of Mix(seed + i) as a float in [0, 1), stretched.</summary>
    public static float Uniform(ulong seed, long i, float scale) =>
        scale * ((Mix(seed + (ulong)i) >> 40) * (1f / (1 << 24)) * 2f - 1f);
}
