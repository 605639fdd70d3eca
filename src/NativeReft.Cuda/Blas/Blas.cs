using static NativeReft.Cuda.Interop.Cublas;

namespace NativeReft.Cuda;

/// <summary>
/// The GEMMs the model needs, in its row-major terms: cuBLAS on a GPU, the emulator's CPU GEMM under the
/// emulator (so the CUDA backend's orchestration runs unchanged in CI). Inputs float, bf16 (or fp16 on cuBLAS);
/// accumulation in fp32 (CUBLAS_COMPUTE_32F); output float or bf16. The cuBLAS handle has its own workspace, so
/// GEMMs can be captured in a graph.
/// </summary>
/// <remarks>
/// cuBLAS is column-major. A row-major (rows, columns) matrix is the column-major (columns, rows) matrix, its
/// transpose, so the row-major output = x weight^T of a Linear layer, (m, n) = (m, k) (n, k)^T, is computed as
/// the column-major output^T (n, m) = weight (n, k) x^T (k, m): gemm(T, N, n, m, k, weight, lda = k, x, ldb = k,
/// output, ldc = n). Its input gradient dX (m, k) = dOut (m, n) weight (n, k) is dX^T (k, m) = weight^T dOut^T:
/// gemm(N, N, k, m, n, weight, lda = k, dOut, ldb = n, dX, ldc = k).
/// </remarks>
public sealed unsafe class Blas : IDisposable
{
    /// <summary>Workspace given to cuBLAS (NVIDIA recommends 32 MiB on Hopper).</summary>
    public const long DefaultWorkspaceBytes = 32L << 20;

    private readonly CudaRuntime? cuda;
    private readonly EmulatorRuntime? emulator;
    private readonly CublasHandle? handle;
    private readonly DeviceBuffer<byte>? workspace;
    private nint boundStream = -1;
    private BlasLt? lt;

    /// <summary>
    /// GEMMs on <paramref name="runtime"/>: a cuBLAS handle on a <see cref="CudaRuntime"/>, the CPU GEMM on an
    /// <see cref="EmulatorRuntime"/>.
    /// </summary>
    public Blas(IDeviceRuntime runtime, long workspaceBytes = DefaultWorkspaceBytes)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        switch (runtime)
        {
            case EmulatorRuntime emulated:
                emulator = emulated;
                break;
            case CudaRuntime gpu:
                Interop.Libraries.Require(CudaLibrary.Cublas);
                cuda = gpu;
                gpu.MakeCurrent();
                handle = new CublasHandle(gpu.Context);
                Check(cublasCreate_v2(out nint created));
                handle.Attach(created);
                workspace = gpu.Allocate<byte>(workspaceBytes);
                Check(cublasSetWorkspace_v2(handle.DangerousGetHandle(), workspace.Pointer.Address, (nuint)workspaceBytes));
                break;
            default:
                throw new NotSupportedException($"no GEMM implementation for {runtime.GetType().Name}");
        }
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
        Run(stream, new ColumnMajorGemm(true, false, n, m, k, alpha, weight.Pointer, input, k, 0, x.Pointer, input, k, 0, beta,
            output.Pointer, BlasTypes.Of<TOut>(), n, 0, 1));
    }

    /// <summary>
    /// output = addend + x weight^T, row-major: x (m, k), weight (n, k), addend and output (m, n), output either
    /// addend itself or apart from it: a Linear layer with the residual add fused, the sum formed in fp32 and rounded
    /// once. In place it is cuBLAS's beta = 1. Apart, cuBLASLt writes output without reading it (C and D apart),
    /// where an unfused add would write the product and then read it and the addend back; if cuBLASLt refuses the
    /// shape, the addend is copied to output and added in place instead (<see cref="SeparateAddendFallback"/>
    /// says why), with the same result. On the emulator: that copy, then its GEMM with beta = 1.
    /// </summary>
    public void LinearAdd<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> addend, DeviceView<TOut> output,
        int m, int k, int n, DeviceStream stream)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        BlasTypes.RequireLength(addend, (long)m * n, "addend");
        if (addend.Pointer != output.Pointer)
        {
            if (cuda is not null && SeparateAddendFallback is null && TryLinearAddApart(x, weight, addend, output, m, k, n, stream))
            {
                return;
            }
            BlasTypes.RequireLength(output, (long)m * n, "output");
            ((IDeviceRuntime?)cuda ?? emulator!).CopyDeviceToDevice(output.Pointer, addend.Pointer, addend.SizeInBytes, stream);
        }
        Linear(x, weight, output, m, k, n, stream, beta: 1);
    }

    /// <summary>Why <see cref="LinearAdd"/> copies its addend instead of using cuBLASLt's separate C, or null.</summary>
    public string? SeparateAddendFallback { get; private set; }

    /// <summary>
    /// dX = alpha * dOut weight + beta * dX, row-major: dOut (m, n), weight (n, k), dX (m, k) — the input gradient
    /// of <see cref="Linear{TIn, TOut}"/>.
    /// </summary>
    public void LinearInputGrad<TIn, TOut>(DeviceView<TIn> dOut, DeviceView<TIn> weight, DeviceView<TOut> dX, int m, int k, int n,
        DeviceStream stream, float alpha = 1, float beta = 0)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        RequireShape(m, k, n);
        BlasTypes.RequireLength(dOut, (long)m * n, "dOut");
        BlasTypes.RequireLength(weight, (long)n * k, "weight");
        BlasTypes.RequireLength(dX, (long)m * k, "dX");
        var input = BlasTypes.Of<TIn>();
        Run(stream, new ColumnMajorGemm(false, false, k, m, n, alpha, weight.Pointer, input, k, 0, dOut.Pointer, input, n, 0, beta,
            dX.Pointer, BlasTypes.Of<TOut>(), k, 0, 1));
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
        Run(stream, new ColumnMajorGemm(true, false, n, m, k, alpha, c.Pointer, input, k, (long)n * k, a.Pointer, input, k, (long)m * k, beta,
            output.Pointer, BlasTypes.Of<TOut>(), n, (long)m * n, batch));
    }

    /// <summary>Destroys the handle and frees the workspace.</summary>
    public void Dispose()
    {
        lt?.Dispose();
        handle?.Dispose();
        workspace?.Dispose();
    }

    private void Run(DeviceStream stream, in ColumnMajorGemm g)
    {
        if (emulator is not null)
        {
            emulator.GemmStridedBatched(stream, g);
            return;
        }
        Bind(stream);
        float alpha = g.Alpha, beta = g.Beta;
        var op = (bool t) => t ? Interop.CublasOperation.Transpose : Interop.CublasOperation.None;
        Check(cublasGemmStridedBatchedEx(handle!.DangerousGetHandle(), op(g.TransposeA), op(g.TransposeB), g.M, g.N, g.K, &alpha,
            g.A.Address, g.AType, g.Lda, g.StrideA, g.B.Address, g.BType, g.Ldb, g.StrideB, &beta,
            g.C.Address, g.CType, g.Ldc, g.StrideC, g.Batch, Interop.CublasComputeType.Compute32F, Interop.CublasGemmAlgorithm.Default));
    }

    private bool TryLinearAddApart<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> addend,
        DeviceView<TOut> output, int m, int k, int n, DeviceStream stream)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        try
        {
            lt ??= new BlasLt(cuda!);
            lt.LinearAdd(x, weight, addend, output, m, k, n, stream);
            return true;
        }
        catch (Exception e) when (e is CudaLibraryNotFoundException || e is CudaException { Library: CudaLibrary.CublasLt })
        {
            // Refused before anything was queued (no library, or no algorithm for the shape): fall back for good.
            SeparateAddendFallback = e.Message;
            return false;
        }
    }

    private void Bind(DeviceStream stream)
    {
        nint native = cuda!.StreamOf(stream);
        cuda.MakeCurrent();
        if (native != boundStream)
        {
            // cublasSetStream resets the workspace to cuBLAS's own pool: give ours back, or a captured GEMM would
            // allocate.
            Check(cublasSetStream_v2(handle!.DangerousGetHandle(), native));
            Check(cublasSetWorkspace_v2(handle.DangerousGetHandle(), workspace!.Pointer.Address, (nuint)workspace.SizeInBytes));
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
