using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;
using NativeReft.Tensors;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor output)
    {
        RequireSameShape(a, b, "add");
        RequireSameShape(a, output, "add");
        TensorPrimitives.Add<T>(Cast(a).Data, Cast(b).Data, Cast(output).Data);
    }

    /// <inheritdoc />
    public void CopyRows(Tensor source, Tensor destination, int batch, int destinationStride, int destinationOffset)
    {
        var s = Cast(source);
        var d = Cast(destination);
        int rowsPerBatch = s.Rows / batch;
        if (s.Rows != batch * rowsPerBatch || s.Columns != d.Columns || d.Rows != batch * destinationStride
            || destinationOffset < 0 || destinationOffset + rowsPerBatch > destinationStride)
        {
            throw new ArgumentException($"copy rows: {s.ShapeText} into {d.ShapeText} at offset {destinationOffset} of stride {destinationStride}");
        }
        int c = s.Columns;
        for (int b = 0; b < batch; b++)
        {
            s.Data.AsSpan(b * rowsPerBatch * c, rowsPerBatch * c)
                .CopyTo(d.Data.AsSpan((b * destinationStride + destinationOffset) * c));
        }
    }

    /// <inheritdoc />
    public void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination) => Scatter(source, rows, destination, add: true);

    /// <inheritdoc />
    public void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination) => Scatter(source, rows, destination, add: false);

    /// <inheritdoc />
    public void Scale(Tensor x, double factor) => TensorPrimitives.Multiply<T>(Cast(x).Data, T.CreateTruncating(factor), Cast(x).Data);

    /// <inheritdoc />
    public double SumOfSquares(Tensor x)
    {
        double sum = 0;
        foreach (T value in Cast(x).Data)
        {
            double d = double.CreateTruncating(value);
            sum += d * d;
        }
        return sum;
    }

    /// <inheritdoc />
    public void Copy(Tensor source, Tensor destination)
    {
        RequireSameShape(source, destination, "copy");
        Cast(source).Data.CopyTo(Cast(destination).Data, 0);
    }

    private void Scatter(Tensor source, ReadOnlySpan<int> rows, Tensor destination, bool add)
    {
        var s = Cast(source);
        var d = Cast(destination);
        if (s.Rows != rows.Length || s.Columns != d.Columns)
        {
            throw new ArgumentException($"scatter rows: {s.ShapeText} into {d.ShapeText} with {rows.Length} row indices");
        }
        for (int i = 0; i < rows.Length; i++)
        {
            if ((uint)rows[i] >= (uint)d.Rows)
            {
                throw new ArgumentOutOfRangeException(nameof(rows), rows[i], $"row outside 0..{d.Rows - 1}");
            }
            if (add)
            {
                TensorPrimitives.Add<T>(d.Row(rows[i]), s.Row(i), d.Row(rows[i]));
            }
            else
            {
                s.Row(i).CopyTo(d.Row(rows[i]));
            }
        }
    }
}
