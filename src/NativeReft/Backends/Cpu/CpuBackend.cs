using System.Numerics;
using NativeReft.IO;
using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

/// <summary>
/// The plain C# backend: the numerical reference for every other backend, and the default where there is no
/// GPU. Written once over <typeparamref name="T"/>: float for real work, double for finite-difference checks.
/// Ops are split one per file (CpuBackend.&lt;Op&gt;.cs), mirroring kernels/&lt;op&gt;.cu.
/// </summary>
/// <typeparam name="T">float or double.</typeparam>
public sealed partial class CpuBackend<T> : IBackend
    where T : unmanaged, IFloatingPointIeee754<T>
{
    private readonly WorkerPool pool;

    /// <summary>Creates a backend; <paramref name="threads"/> caps the worker threads (0: all cores).</summary>
    public CpuBackend(int threads = 0)
    {
        if (typeof(T) != typeof(float) && typeof(T) != typeof(double))
        {
            throw new NotSupportedException($"CpuBackend supports float and double, not {typeof(T).Name}");
        }
        Threads = threads > 0 ? threads : Environment.ProcessorCount;
        pool = new WorkerPool(Threads);
    }

    /// <inheritdoc />
    public string Name => typeof(T) == typeof(float) ? "cpu-f32" : "cpu-f64";

    /// <inheritdoc />
    public DType DType => typeof(T) == typeof(float) ? DType.F32 : DType.F64;

    /// <summary>Worker threads used by the parallel ops.</summary>
    public int Threads { get; }

    /// <inheritdoc />
    public Tensor Zeros(params int[] shape) => Wrap(new T[ElementCount(shape)], shape);

    /// <inheritdoc />
    public Tensor Upload(ReadOnlySpan<float> data, params int[] shape)
    {
        var values = new T[ElementCount(shape)];
        if (data.Length != values.Length)
        {
            throw new ArgumentException($"{data.Length} values do not fill shape ({string.Join(", ", shape)})", nameof(data));
        }
        for (int i = 0; i < values.Length; i++)
        {
            values[i] = T.CreateTruncating(data[i]);
        }
        return Wrap(values, shape);
    }

    /// <inheritdoc />
    public Tensor LoadWeight(WeightTensor weight)
    {
        ArgumentNullException.ThrowIfNull(weight);
        if (typeof(T) == typeof(float))
        {
            var floats = new float[weight.ElementCount];
            weight.ReadInto(floats);
            return Wrap((T[])(object)floats, weight.Shape);
        }
        return Upload(weight.ReadAll(), weight.Shape);
    }

    /// <inheritdoc />
    public void Download(Tensor source, Span<float> destination)
    {
        var data = Data(source);
        if (destination.Length != data.Length)
        {
            throw new ArgumentException($"destination holds {destination.Length}, tensor {source.ShapeText} has {data.Length}", nameof(destination));
        }
        for (int i = 0; i < data.Length; i++)
        {
            destination[i] = float.CreateTruncating(data[i]);
        }
    }

    /// <summary>Wraps an existing array (no copy) as a tensor of this backend.</summary>
    public CpuTensor<T> Wrap(T[] data, params int[] shape) => new(this, data, shape);

    /// <summary>The array behind a tensor of this backend.</summary>
    public T[] Data(Tensor tensor) => Cast(tensor).Data;

    /// <inheritdoc />
    public void Dispose() => pool.Dispose();

    private CpuTensor<T> Cast(Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        if (tensor is not CpuTensor<T> cpu || !ReferenceEquals(cpu.Backend, this))
        {
            throw new ArgumentException($"{tensor} does not belong to backend {Name}", nameof(tensor));
        }
        return cpu;
    }

    private static long ElementCount(ReadOnlySpan<int> shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(d, nameof(shape));
            n *= d;
        }
        return n;
    }

    private static void RequireRows(Tensor a, Tensor b, string op)
    {
        if (a.Rows != b.Rows)
        {
            throw new ArgumentException($"{op}: {a.ShapeText} and {b.ShapeText} have different row counts");
        }
    }

    private static void RequireSameShape(Tensor a, Tensor b, string op)
    {
        if (!a.Shape.SequenceEqual(b.Shape))
        {
            throw new ArgumentException($"{op}: shapes {a.ShapeText} and {b.ShapeText} differ");
        }
    }

    /// <summary>
    /// Runs body(start, end) over [0, count) in one contiguous chunk per thread, or inline when the whole job is
    /// too small to pay for the hand-off.
    /// </summary>
    private void ParallelChunks(int count, long costPerItem, Action<int, int> body)
    {
        const long minimumParallelCost = 1 << 13;
        int parts = (int)Math.Min(Math.Min(Threads, count), Math.Max(1, count * costPerItem / minimumParallelCost));
        if (parts <= 1)
        {
            body(0, count);
            return;
        }
        pool.For(parts, p => body((int)((long)count * p / parts), (int)((long)count * (p + 1) / parts)));
    }
}
