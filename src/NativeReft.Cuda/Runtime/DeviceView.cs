using System.Runtime.CompilerServices;

namespace NativeReft.Cuda;

/// <summary>
/// A non-owning view of <see cref="Length"/> elements of <typeparamref name="T"/> in device memory: a pointer and
/// a length, passed by value everywhere a kernel or a copy needs device data. The memory belongs to a
/// <see cref="DeviceBuffer{T}"/> (or to whoever made the view), which must outlive it.
/// </summary>
/// <typeparam name="T">An unmanaged element type (float, <see cref="Tensors.BFloat16"/>, int...).</typeparam>
public readonly struct DeviceView<T> : IEquatable<DeviceView<T>>
    where T : unmanaged
{
    /// <summary>Creates a view of <paramref name="length"/> elements at <paramref name="pointer"/>.</summary>
    public DeviceView(DevicePointer pointer, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        Pointer = pointer;
        Length = length;
    }

    /// <summary>The address of the first element.</summary>
    public DevicePointer Pointer { get; }

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The size in bytes.</summary>
    public long SizeInBytes => Length * Unsafe.SizeOf<T>();

    /// <summary>Whether the view holds no element.</summary>
    public bool IsEmpty => Length == 0;

    /// <summary>Elements [<paramref name="start"/>, <paramref name="start"/> + <paramref name="length"/>).</summary>
    public DeviceView<T> Slice(long start, long length)
    {
        if ((ulong)start > (ulong)Length || (ulong)length > (ulong)(Length - start))
        {
            throw new ArgumentOutOfRangeException(nameof(start), $"slice [{start}, {start} + {length}) of a view of {Length} elements");
        }
        return new DeviceView<T>(Pointer.Offset(start * Unsafe.SizeOf<T>()), length);
    }

    /// <summary>Elements from <paramref name="start"/> to the end.</summary>
    public DeviceView<T> Slice(long start) => Slice(start, Length - start);

    /// <summary>The same bytes seen as <typeparamref name="TOther"/> (the size must divide evenly).</summary>
    public DeviceView<TOther> Cast<TOther>()
        where TOther : unmanaged
    {
        long bytes = SizeInBytes;
        if (bytes % Unsafe.SizeOf<TOther>() != 0)
        {
            throw new ArgumentException($"{bytes} bytes are not a whole number of {typeof(TOther).Name}");
        }
        return new DeviceView<TOther>(Pointer, bytes / Unsafe.SizeOf<TOther>());
    }

    /// <inheritdoc />
    public bool Equals(DeviceView<T> other) => Pointer == other.Pointer && Length == other.Length;

    /// <inheritdoc />
    public override bool Equals(object? obj) => obj is DeviceView<T> other && Equals(other);

    /// <inheritdoc />
    public override int GetHashCode() => HashCode.Combine(Pointer, Length);

    /// <summary>Value equality: same pointer, same length.</summary>
    public static bool operator ==(DeviceView<T> left, DeviceView<T> right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(DeviceView<T> left, DeviceView<T> right) => !left.Equals(right);

    /// <inheritdoc />
    public override string ToString() => $"DeviceView<{typeof(T).Name}>({Pointer}, {Length})";
}
