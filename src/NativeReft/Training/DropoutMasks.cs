using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Training;

/// <summary>
/// Dropout scales (0 or 1 / (1 - p)) for the edited states, from a counter-based hash of (seed, step, micro-batch,
/// intervention, element): the same masks whatever the backend or thread count, and reproducible on resume.
/// </summary>
public sealed class DropoutMasks(double probability, ulong seed, long step, int microBatch)
{
    /// <summary>A (rows, dim) mask tensor owned by <paramref name="tape"/> for intervention number <paramref name="intervention"/>.</summary>
    public Tensor Create(Tape tape, int intervention, int rows, int dim)
    {
        ArgumentNullException.ThrowIfNull(tape);
        ulong stream = CounterHash.Mix(seed ^ CounterHash.Mix((ulong)step * 0x9E3779B97F4A7C15UL ^ (ulong)microBatch << 20 ^ (ulong)intervention));
        return tape.Own(tape.Backend.DropoutScale(rows, dim, probability, stream));
    }
}
