using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

/// <summary>A cublasHandle_t; destroyed with cublasDestroy_v2 in its context.</summary>
internal sealed class CublasHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => Interop.Cublas.cublasDestroy_v2(native) == Interop.CublasStatus.Success;
}

/// <summary>A cublasLtHandle_t.</summary>
internal sealed class CublasLtHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => Interop.CublasLt.cublasLtDestroy(native) == Interop.CublasStatus.Success;
}

/// <summary>A cuBLASLt descriptor (host memory only, no context): matmul, matrix layout or preference.</summary>
internal sealed class LtDescriptorHandle : SafeHandle
{
    private readonly Func<nint, Interop.CublasStatus> destroy;

    private LtDescriptorHandle(Func<nint, Interop.CublasStatus> destroy)
        : base(0, ownsHandle: true)
    {
        this.destroy = destroy;
    }

    public override bool IsInvalid => handle == 0;

    public nint Native => handle;

    public static LtDescriptorHandle MatmulDesc(Interop.CublasComputeType compute, Interop.CudaDataType scale)
    {
        var desc = new LtDescriptorHandle(Interop.CublasLt.cublasLtMatmulDescDestroy);
        Interop.CublasLt.Check(Interop.CublasLt.cublasLtMatmulDescCreate(out nint created, compute, scale));
        desc.SetHandle(created);
        return desc;
    }

    public static LtDescriptorHandle Layout(Interop.CudaDataType type, long rows, long columns, long leadingDimension)
    {
        var layout = new LtDescriptorHandle(Interop.CublasLt.cublasLtMatrixLayoutDestroy);
        Interop.CublasLt.Check(Interop.CublasLt.cublasLtMatrixLayoutCreate(out nint created, type, (ulong)rows, (ulong)columns, leadingDimension));
        layout.SetHandle(created);
        return layout;
    }

    public static LtDescriptorHandle Preference()
    {
        var preference = new LtDescriptorHandle(Interop.CublasLt.cublasLtMatmulPreferenceDestroy);
        Interop.CublasLt.Check(Interop.CublasLt.cublasLtMatmulPreferenceCreate(out nint created));
        preference.SetHandle(created);
        return preference;
    }

    protected override bool ReleaseHandle() => destroy(handle) == Interop.CublasStatus.Success;
}

/// <summary>Maps element types to cudaDataType.</summary>
internal static class BlasTypes
{
    public static Interop.CudaDataType Of<T>()
        where T : unmanaged
    {
        if (typeof(T) == typeof(float))
        {
            return Interop.CudaDataType.R32F;
        }
        if (typeof(T) == typeof(Tensors.BFloat16))
        {
            return Interop.CudaDataType.R16BF;
        }
        if (typeof(T) == typeof(Half))
        {
            return Interop.CudaDataType.R16F;
        }
        throw new NotSupportedException($"cuBLAS GEMMs here take float, BFloat16 or Half, not {typeof(T).Name}");
    }

    public static void RequireLength<T>(DeviceView<T> view, long needed, string what)
        where T : unmanaged
    {
        if (view.Length < needed)
        {
            throw new ArgumentException($"{what} holds {view.Length} elements, the GEMM needs {needed}");
        }
    }
}
