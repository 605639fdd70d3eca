using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

/// <summary>A tensor in a managed array, owned by a <see cref="CpuBackend{T}"/>.</summary>
/// <typeparam name="T">float (inference and training) or double (gradient checks).</typeparam>
public sealed class CpuTensor<T> : Tensor
    where T : unmanaged
{
    internal CpuTensor(IBackend backend, T[] data, ReadOnlySpan<int> shape)
        : base(shape)
    {
        if (data.Length != Length)
        {
            throw new ArgumentException($"{data.Length} elements do not fill shape ({string.Join(", ", shape.ToArray())})", nameof(data));
        }
        Backend = backend;
        Data = data;
    }

    /// <inheritdoc />
    public override IBackend Backend { get; }

    /// <summary>The elements, row-major.</summary>
    public T[] Data { get; }

    /// <summary>Row <paramref name="row"/> of the flattened 2-D view.</summary>
    public Span<T> Row(int row) => Data.AsSpan(row * Columns, Columns);
}
