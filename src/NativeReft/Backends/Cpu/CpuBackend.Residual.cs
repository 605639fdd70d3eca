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
}
