namespace NativeReft.Tensors;

/// <summary>
/// A dense row-major tensor owned by a backend. Ops live on <see cref="Backends.IBackend"/>; a tensor is only
/// storage plus a shape, so the same model code drives CPU memory or (later) device memory.
/// </summary>
public abstract class Tensor : IDisposable
{
    private readonly int[] shape;

    /// <summary>Creates a tensor of the given shape (every dimension at least 1).</summary>
    protected Tensor(ReadOnlySpan<int> shape)
    {
        this.shape = shape.ToArray();
        long length = 1;
        foreach (int d in this.shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(d, nameof(shape));
            length *= d;
        }
        Length = length;
    }

    /// <summary>The dimensions, outermost first.</summary>
    public ReadOnlySpan<int> Shape => shape;

    /// <summary>The number of elements.</summary>
    public long Length { get; }

    /// <summary>The size of the last dimension (the row length of the flattened 2-D view).</summary>
    public int Columns => shape[^1];

    /// <summary>The number of rows of the flattened 2-D view (all dimensions but the last).</summary>
    public int Rows => checked((int)(Length / Columns));

    /// <summary>The backend that owns the storage.</summary>
    public abstract Backends.IBackend Backend { get; }

    /// <summary>Shape as text, e.g. "(2, 7, 64)".</summary>
    public string ShapeText => "(" + string.Join(", ", shape) + ")";

    /// <inheritdoc />
    public override string ToString() => $"Tensor{ShapeText} on {Backend.Name}";

    /// <summary>Releases the storage (a no-op for managed CPU memory).</summary>
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases backend resources.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}
