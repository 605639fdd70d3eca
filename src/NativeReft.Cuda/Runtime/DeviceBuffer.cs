using System.Runtime.CompilerServices;

namespace NativeReft.Cuda;

/// <summary>
/// Owns <see cref="Length"/> elements of device memory, rented from the runtime's <see cref="DeviceMemoryPool"/>
/// and given back on <see cref="Dispose"/>. Everything else takes its <see cref="View"/>.
/// </summary>
/// <typeparam name="T">An unmanaged element type.</typeparam>
public sealed class DeviceBuffer<T> : IDisposable
    where T : unmanaged
{
    private DevicePointer pointer;
    private bool disposed;

    /// <summary>Allocates <paramref name="length"/> elements on <paramref name="runtime"/> (contents undefined).</summary>
    public DeviceBuffer(IDeviceRuntime runtime, long length)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Runtime = runtime;
        Length = length;
        pointer = length == 0 ? DevicePointer.Null : runtime.Pool.Rent(checked(length * Unsafe.SizeOf<T>()));
    }

    /// <summary>The runtime the memory belongs to.</summary>
    public IDeviceRuntime Runtime { get; }

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The size in bytes.</summary>
    public long SizeInBytes => Length * Unsafe.SizeOf<T>();

    /// <summary>The address of the first element.</summary>
    public DevicePointer Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            return pointer;
        }
    }

    /// <summary>A view of the whole buffer.</summary>
    public DeviceView<T> View => new(Pointer, Length);

    /// <summary>The view of the whole buffer.</summary>
    public static implicit operator DeviceView<T>(DeviceBuffer<T> buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        return buffer.View;
    }

    /// <summary>The view of the whole buffer (the named alternative to the conversion).</summary>
    public DeviceView<T> ToDeviceView() => View;

    /// <summary>Copies <paramref name="source"/> (exactly <see cref="Length"/> elements) into the buffer.</summary>
    public void CopyFrom(ReadOnlySpan<T> source, DeviceStream? stream = null) => Runtime.CopyToDevice(source, View, stream);

    /// <summary>Copies the buffer into <paramref name="destination"/> (exactly <see cref="Length"/> elements).</summary>
    public void CopyTo(Span<T> destination, DeviceStream? stream = null) => Runtime.CopyToHost(View, destination, stream);

    /// <summary>The contents, copied to a new array (synchronous).</summary>
    public T[] ToArray()
    {
        var values = new T[Length];
        CopyTo(values);
        return values;
    }

    /// <summary>Sets every byte to zero.</summary>
    public void Clear(DeviceStream? stream = null)
    {
        if (Length > 0)
        {
            Runtime.Fill8(Pointer, 0, SizeInBytes, stream);
        }
    }

    /// <summary>Gives the memory back to the pool.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        disposed = true;
        if (!pointer.IsNull)
        {
            Runtime.Pool.Return(pointer);
            pointer = DevicePointer.Null;
        }
    }

    /// <inheritdoc />
    public override string ToString() => $"DeviceBuffer<{typeof(T).Name}>({Length}) on {Runtime.Name}";
}
