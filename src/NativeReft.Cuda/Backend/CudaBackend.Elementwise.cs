using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor output)
    {
        var (x, y, o) = (Cast(a), Cast(b), Cast(output));
        using var op = Op("add", OpWork.Elementwise(x.Length, DTypes.SizeOf(x.DType), reads: 2));
        RequireSameLength(x, y, "add");
        RequireSameLength(x, o, "add");
        if (x.DType == DType.F32)
        {
            if (!ReferenceEquals(x, o))
            {
                Copy(x, o);
            }
            elementwise.Axpy(o.Float, 1, y.Float, Stream);
            return;
        }
        elementwise.Add(x.BFloat16, y.BFloat16, o.BFloat16, Stream);
    }

    /// <inheritdoc />
    public void Scale(Tensor x, double factor)
    {
        var t = Cast(x);
        using var op = Op("scale", OpWork.Elementwise(t.Length, DTypes.SizeOf(t.DType), reads: 1));
        if (t.DType == DType.F32)
        {
            elementwise.Scale(t.Float, (float)factor, Stream);
        }
        else
        {
            elementwise.Scale(t.BFloat16, (float)factor, Stream);
        }
    }
}
