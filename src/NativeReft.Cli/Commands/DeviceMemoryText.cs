using System.Globalization;
using NativeReft.Cuda;

namespace NativeReft.Cli.Commands;

/// <summary>The memory pool's two peaks as the commands print them.</summary>
internal static class DeviceMemoryText
{
    /// <summary>In use (the tensors alive) and held (with the pool's cache: the device footprint, PyTorch's reserved).</summary>
    public static string Peaks(DeviceMemoryPool pool) =>
        $"peak device memory {Size(pool.PeakBytesInUse)} in use, {Size(pool.PeakBytesHeld)} held by the memory pool";

    /// <summary>GiB from 1 GiB up, else MiB.</summary>
    public static string Size(double bytes) => bytes >= 1L << 30
        ? string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 30):F2} GiB")
        : string.Create(CultureInfo.InvariantCulture, $"{bytes / (1L << 20):F1} MiB");
}
