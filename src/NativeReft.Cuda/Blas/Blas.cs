using static NativeReft.Cuda.Interop.Cublas;

namespace NativeReft.Cuda;

/// <summary>
/// cuBLAS GEMMs in the row-major terms the model uses. Inputs float, bf16 or fp16; accumulation in fp32
/// (CUBLAS_COMPUTE_32F); output float, bf16 or fp16. The handle has its own workspace, so GEMMs can be captured
/// in a graph.
/// </summary>
/// <remarks>
/// cuBLAS is column-major. A row-major (rows, columns) matrix is the column-major (columns, rows) matrix, its
/// transpose, so the row-major output = x weight^T of a Linear layer, (m, n) = (m, k) (n, k)^T, is computed as
/// the column-major output^T (n, m) = weight (n, k) x^T (k, m): cublasGemmEx(T, N, n, m, k, weight, lda = k,
/// x, ldb = k, output, ldc = n).
/// </remarks>
public sealed unsafe class Blas : IDisposable
{
    /// <summary>Workspace given to cuBLAS (NVIDIA recommends 32 MiB on Hopper).</summary>
    public const long DefaultWorkspaceBytes = 32L << 20;

    private readonly CudaRuntime runtime;
    private readonly CublasHandle handle;
    private readonly DeviceBuffer<byte> workspace;
    private nint boundStream = -1;

    /// <summary>Creates a cuBLAS handle on <paramref name="runtime"/>'s device.</summary>
    public Blas(CudaRuntime runtime, long workspaceBytes = DefaultWorkspaceBytes)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        Interop.Libraries.Require(CudaLibrary.Cublas);
        this.runtime = runtime;
        runtime.MakeCurrent();
        handle = new CublasHandle(runtime.Context);
        Check(cublasCreate_v2(out nint created));
        handle.Attach(created);
        workspace = runtime.Allocate<byte>(workspaceBytes);
        Check(cublasSetWorkspace_v2(handle.DangerousGetHandle(), workspace.Pointer.Address, (nuint)workspaceBytes));
    }

    /// <summary>cuBLAS's version, e.g. "13.0.2", or null when cuBLAS is not installed.</summary>
    public static string? QueryVersion()
    {
        if (!Interop.Libraries.IsAvailable(CudaLibrary.Cublas))
        {
            return null;
        }
        Check(cublasGetProperty(Interop.LibraryProperty.MajorVersion, out int major));
        Check(cublasGetProperty(Interop.LibraryProperty.MinorVersion, out int minor));
        Check(cublasGetProperty(Interop.LibraryProperty.PatchLevel, out int patch));
        return $"{major}.{minor}.{patch}";
    }

    /// <summary>
    /// output = alpha * x weight^T + beta * output, row-major: x (m, k), weight (n, k), output (m, n).
    /// beta = 0 overwrites (activation gradients), beta = 1 accumulates (parameter gradients).
    /// </summary>
    public void Linear<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> output, int m, int k, int n,
        DeviceStream stream, float alpha = 1, float beta = 0)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        RequireShape(m, k, n);
        BlasTypes.RequireLength(x, (long)m * k, "x");
        BlasTypes.RequireLength(weight, (long)n * k, "weight");
        BlasTypes.RequireLength(output, (long)m * n, "output");
        var input = BlasTypes.Of<TIn>();
        Bind(stream);
        Check(cublasGemmEx(handle.DangerousGetHandle(), Interop.CublasOperation.Transpose, Interop.CublasOperation.None,
            n, m, k, &alpha, weight.Pointer.Address, input, k, x.Pointer.Address, input, k, &beta,
            output.Pointer.Address, BlasTypes.Of<TOut>(), n, Interop.CublasComputeType.Compute32F, Interop.CublasGemmAlgorithm.Default));
    }

    /// <summary>
    /// For each of <paramref name="batch"/> slices: output[b] = alpha * a[b] c[b]^T + beta * output[b], row-major,
    /// a[b] (m, k), c[b] (n, k), output[b] (m, n), slices packed one after another (attention's Q K^T per head).
    /// </summary>
    public void LinearBatched<TIn, TOut>(DeviceView<TIn> a, DeviceView<TIn> c, DeviceView<TOut> output, int m, int k, int n, int batch,
        DeviceStream stream, float alpha = 1, float beta = 0)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        RequireShape(m, k, n);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        BlasTypes.RequireLength(a, (long)batch * m * k, "a");
        BlasTypes.RequireLength(c, (long)batch * n * k, "c");
        BlasTypes.RequireLength(output, (long)batch * m * n, "output");
        var input = BlasTypes.Of<TIn>();
        Bind(stream);
        Check(cublasGemmStridedBatchedEx(handle.DangerousGetHandle(), Interop.CublasOperation.Transpose, Interop.CublasOperation.None,
            n, m, k, &alpha, c.Pointer.Address, input, k, (long)n * k, a.Pointer.Address, input, k, (long)m * k, &beta,
            output.Pointer.Address, BlasTypes.Of<TOut>(), n, (long)m * n, batch,
            Interop.CublasComputeType.Compute32F, Interop.CublasGemmAlgorithm.Default));
    }

    /// <summary>Destroys the handle and frees the workspace.</summary>
    public void Dispose()
    {
        handle.Dispose();
        workspace.Dispose();
    }

    private void Bind(DeviceStream stream)
    {
        nint native = runtime.StreamOf(stream);
        runtime.MakeCurrent();
        if (native != boundStream)
        {
            // cublasSetStream resets the workspace to cuBLAS's own pool: give ours back, or a captured GEMM would
            // allocate.
            Check(cublasSetStream_v2(handle.DangerousGetHandle(), native));
            Check(cublasSetWorkspace_v2(handle.DangerousGetHandle(), workspace.Pointer.Address, (nuint)workspace.SizeInBytes));
            boundStream = native;
        }
    }

    internal static void RequireShape(int m, int k, int n)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(m);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(k);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(n);
    }
}
