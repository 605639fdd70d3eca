namespace NativeReft.Cuda;

/// <summary>
/// The launch shapes every CUDA device since compute capability 3.0 refuses: a block of more than 1024 threads or of
/// more than the kernel's own limit (its <c>__launch_bounds__</c>), a block deeper than 64 in z, a grid wider than
/// 2^31 - 1 in x or 65535 in y or z, an empty grid or block, more dynamic shared memory than the device lets a block
/// opt in to. The emulator refuses them too, so that a launch the tests run on it is one a GPU runs.
/// </summary>
public static class LaunchLimits
{
    /// <summary>The most threads a block may have on any device.</summary>
    public const int MaxThreadsPerBlock = 1024;

    /// <summary>The deepest block in z.</summary>
    public const uint MaxBlockZ = 64;

    /// <summary>The widest grid in x.</summary>
    public const uint MaxGridX = int.MaxValue;

    /// <summary>The widest grid in y and in z.</summary>
    public const uint MaxGridYZ = 65535;

    /// <summary>Throws an <see cref="ArgumentException"/> naming <paramref name="kernel"/> for a launch a GPU refuses.</summary>
    /// <param name="kernel">The kernel's name, for the message.</param>
    /// <param name="config">The launch.</param>
    /// <param name="kernelMaxThreads">The kernel's own limit on threads per block (<see cref="MaxThreadsPerBlock"/> when it has none).</param>
    /// <param name="maxSharedBytes">The most dynamic shared memory a block may opt in to on the device.</param>
    public static void Check(string kernel, in LaunchConfig config, int kernelMaxThreads, int maxSharedBytes)
    {
        var (grid, block) = (config.Grid, config.Block);
        long threads = (long)block.X * block.Y * block.Z;
        string? problem =
            threads == 0 || grid.X == 0 || grid.Y == 0 || grid.Z == 0 ? "an empty grid or block"
            : threads > MaxThreadsPerBlock ? $"{threads} threads per block; a GPU allows at most {MaxThreadsPerBlock}"
            : threads > kernelMaxThreads ? $"{threads} threads per block; its __launch_bounds__ allow at most {kernelMaxThreads}"
            : block.Z > MaxBlockZ ? $"a block {block.Z} deep in z; a GPU allows at most {MaxBlockZ}"
            : grid.X > MaxGridX ? $"a grid {grid.X} wide in x; a GPU allows at most {MaxGridX}"
            : grid.Y > MaxGridYZ || grid.Z > MaxGridYZ ? $"a grid {Math.Max(grid.Y, grid.Z)} wide in y or z; a GPU allows at most {MaxGridYZ}"
            : config.SharedMemoryBytes > maxSharedBytes ? $"{config.SharedMemoryBytes} B of shared memory per block; the device allows at most {maxSharedBytes}"
            : null;
        if (problem is not null)
        {
            throw new ArgumentException(
                $"{kernel}: a GPU refuses this launch, grid ({grid.X}, {grid.Y}, {grid.Z}), block ({block.X}, {block.Y}, {block.Z}): {problem}",
                nameof(config));
        }
    }
}
