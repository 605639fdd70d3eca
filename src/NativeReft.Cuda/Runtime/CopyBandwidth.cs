namespace NativeReft.Cuda;

/// <summary>
/// The device-to-device copy bandwidth, measured on the spot: what a memory-bound op is held to (the goal is 70%
/// of it). A copy reads each byte and writes it once, so it counts two bytes moved per byte copied, as
/// <see cref="OpWork"/> counts an op's reads and writes.
/// </summary>
public static class CopyBandwidth
{
    /// <summary>
    /// GB/s (10^9 bytes moved per second) of <paramref name="copies"/> back-to-back copies of
    /// <paramref name="bytes"/> between two fresh buffers, timed by events after one untimed copy.
    /// </summary>
    public static double Measure(IDeviceRuntime runtime, DeviceStream stream, long bytes, int copies)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(copies);
        using var source = runtime.Allocate<byte>(bytes);
        using var destination = runtime.Allocate<byte>(bytes);
        using var start = runtime.CreateTimingEvent();
        using var end = runtime.CreateTimingEvent();
        runtime.Fill8(source.Pointer, 1, bytes, stream);
        runtime.CopyDeviceToDevice(destination.Pointer, source.Pointer, bytes, stream); // first touch, untimed
        start.Record(stream);
        for (int i = 0; i < copies; i++)
        {
            runtime.CopyDeviceToDevice(destination.Pointer, source.Pointer, bytes, stream);
        }
        end.Record(stream);
        end.Synchronize();
        return 2.0 * bytes * copies / (end.ElapsedMillisecondsSince(start) * 1e6);
    }
}
