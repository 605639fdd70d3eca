using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

/// <summary>
/// Page-locked host memory (cuMemAllocHost on a GPU): the only host memory a copy on a stream really overlaps
/// with kernels from. Owns its native block through a SafeHandle.
/// </summary>
/// <typeparam name="T">An unmanaged element type.</typeparam>
public sealed unsafe class PinnedHostBuffer<T> : IDisposable
    where T : unmanaged
{
    private readonly SafeHandle handle;

    internal PinnedHostBuffer(SafeHandle handle, long length)
    {
        this.handle = handle;
        Length = length;
    }

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The size in bytes.</summary>
    public long SizeInBytes => Length * Unsafe.SizeOf<T>();

    /// <summary>The host address of the first element.</summary>
    public nint Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return handle.DangerousGetHandle();
        }
    }

    /// <summary>The elements (at most int.MaxValue of them can be seen as a span).</summary>
    public Span<T> Span => new((void*)Pointer, checked((int)Length));

    /// <summary>
    /// Queues a copy of the whole buffer to <paramref name="destination"/> on <paramref name="stream"/>; the
    /// buffer must not change until the stream has passed it.
    /// </summary>
    public void CopyToDeviceAsync(IDeviceRuntime runtime, DeviceView<T> destination, DeviceStream stream)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(stream);
        RequireLength(destination.Length);
        runtime.CopyHostToDevice(destination.Pointer, (void*)Pointer, SizeInBytes, stream);
    }

    /// <summary>
    /// Queues a copy of <paramref name="source"/> into the buffer on <paramref name="stream"/>; read the buffer
    /// only after the stream has been synchronized.
    /// </summary>
    public void CopyFromDeviceAsync(IDeviceRuntime runtime, DeviceView<T> source, DeviceStream stream)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentNullException.ThrowIfNull(stream);
        RequireLength(source.Length);
        runtime.CopyDeviceToHost((void*)Pointer, source.Pointer, SizeInBytes, stream);
    }

    /// <summary>Frees the pinned memory.</summary>
    public void Dispose() => handle.Dispose();

    private void RequireLength(long length)
    {
        if (length != Length)
        {
            throw new ArgumentException($"the device view holds {length} elements, the pinned buffer {Length}");
        }
    }
}
