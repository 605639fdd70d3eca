using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor output)
    {
        using var op = Op("add");
        var (x, y, o) = (Cast(a), Cast(b), Cast(output));
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
        using var op = Op("scale");
        var t = Cast(x);
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
