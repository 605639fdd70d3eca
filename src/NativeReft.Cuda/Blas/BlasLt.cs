using static NativeReft.Cuda.Interop.CublasLt;

namespace NativeReft.Cuda;

/// <summary>What cuBLASLt applies to a GEMM's result before storing it (cublasLtEpilogue_t).</summary>
public enum MatmulEpilogue
{
    /// <summary>Nothing.</summary>
    None = 1,

    /// <summary>max(x, 0).</summary>
    Relu = 2,

    /// <summary>x + bias, the bias broadcast over rows of the (row-major) output.</summary>
    Bias = 4,

    /// <summary>max(x + bias, 0).</summary>
    ReluBias = 6,

    /// <summary>GELU (tanh approximation).</summary>
    Gelu = 32,

    /// <summary>GELU(x + bias).</summary>
    GeluBias = 36,
}

/// <summary>
/// cuBLASLt GEMMs with fused epilogues, in row-major terms (see <see cref="Blas"/> for the column-major mapping).
/// The algorithm for each shape comes from cuBLASLt's heuristic once and is remembered with its descriptors.
/// </summary>
public sealed unsafe class BlasLt : IDisposable
{
    private readonly CudaRuntime runtime;
    private readonly CublasLtHandle handle;
    private readonly DeviceBuffer<byte> workspace;
    private readonly Dictionary<PlanKey, Plan> plans = new();

    /// <summary>Creates a cuBLASLt handle on <paramref name="runtime"/>'s device.</summary>
    public BlasLt(CudaRuntime runtime, long workspaceBytes = Blas.DefaultWorkspaceBytes)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        Interop.Libraries.Require(CudaLibrary.CublasLt);
        this.runtime = runtime;
        runtime.MakeCurrent();
        handle = new CublasLtHandle(runtime.Context);
        Check(cublasLtCreate(out nint created));
        handle.Attach(created);
        workspace = runtime.Allocate<byte>(workspaceBytes);
    }

    /// <summary>cuBLASLt's version number (e.g. 130002 for 13.0.2), or null when it is not installed.</summary>
    public static long? QueryVersion() =>
        Interop.Libraries.IsAvailable(CudaLibrary.CublasLt) ? (long)cublasLtGetVersion() : null;

    /// <summary>
    /// output = epilogue(x weight^T [+ bias]), row-major: x (m, k), weight (n, k), bias (n) in the output's type,
    /// output (m, n). Pass an empty <paramref name="bias"/> unless the epilogue adds one.
    /// </summary>
    public void Linear<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> bias, DeviceView<TOut> output,
        int m, int k, int n, MatmulEpilogue epilogue, DeviceStream stream)
        where TIn : unmanaged
        where TOut : unmanaged =>
        Run(x, weight, bias, default, output, m, k, n, epilogue, stream);

    /// <summary>
    /// output = addend + x weight^T, row-major: x (m, k), weight (n, k), addend and output (m, n), output written
    /// without reading it (cuBLASLt's C and D apart, beta = 1): a Linear layer with the residual add in its
    /// epilogue. The sum is formed in fp32 and rounded to the output's type once.
    /// </summary>
    public void LinearAdd<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> addend, DeviceView<TOut> output,
        int m, int k, int n, DeviceStream stream)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        BlasTypes.RequireLength(addend, (long)m * n, "addend");
        Run(x, weight, default, addend, output, m, k, n, MatmulEpilogue.None, stream);
    }

    /// <summary>Destroys the descriptors and the handle, and frees the workspace.</summary>
    public void Dispose()
    {
        foreach (var plan in plans.Values)
        {
            plan.Dispose();
        }
        plans.Clear();
        handle.Dispose();
        workspace.Dispose();
    }

    private void Run<TIn, TOut>(DeviceView<TIn> x, DeviceView<TIn> weight, DeviceView<TOut> bias, DeviceView<TOut> addend,
        DeviceView<TOut> output, int m, int k, int n, MatmulEpilogue epilogue, DeviceStream stream)
        where TIn : unmanaged
        where TOut : unmanaged
    {
        Blas.RequireShape(m, k, n);
        BlasTypes.RequireLength(x, (long)m * k, "x");
        BlasTypes.RequireLength(weight, (long)n * k, "weight");
        BlasTypes.RequireLength(output, (long)m * n, "output");
        bool wantsBias = epilogue is MatmulEpilogue.Bias or MatmulEpilogue.ReluBias or MatmulEpilogue.GeluBias;
        if (wantsBias != !bias.IsEmpty)
        {
            throw new ArgumentException(wantsBias ? $"epilogue {epilogue} needs a bias" : $"epilogue {epilogue} takes no bias", nameof(bias));
        }
        if (wantsBias)
        {
            BlasTypes.RequireLength(bias, n, "bias");
        }
        nint native = runtime.StreamOf(stream);
        runtime.MakeCurrent();
        var plan = GetPlan(new PlanKey(m, k, n, BlasTypes.Of<TIn>(), BlasTypes.Of<TOut>(), epilogue), bias.Pointer);
        if (wantsBias)
        {
            ulong biasPointer = bias.Pointer.Address;
            Check(cublasLtMatmulDescSetAttribute(plan.Desc.Native, Interop.LtMatmulDescAttribute.BiasPointer, &biasPointer, sizeof(ulong)));
        }
        float alpha = 1, beta = addend.IsEmpty ? 0 : 1;
        ulong c = addend.IsEmpty ? output.Pointer.Address : addend.Pointer.Address;
        var algorithm = plan.Algorithm;
        Check(cublasLtMatmul(handle.DangerousGetHandle(), plan.Desc.Native, &alpha,
            weight.Pointer.Address, plan.A.Native, x.Pointer.Address, plan.B.Native, &beta,
            c, plan.D.Native, output.Pointer.Address, plan.D.Native,
            &algorithm, workspace.Pointer.Address, (nuint)workspace.SizeInBytes, native));
    }

    private Plan GetPlan(PlanKey key, DevicePointer bias)
    {
        if (plans.TryGetValue(key, out var known))
        {
            return known;
        }
        // Column-major: D (n, m) = op(A) op(B) with A = weight seen as (k, n), transposed, and B = x seen as (k, m).
        var desc = LtDescriptorHandle.MatmulDesc(Interop.CublasComputeType.Compute32F, Interop.CudaDataType.R32F);
        var a = LtDescriptorHandle.Layout(key.Input, key.K, key.N, key.K);
        var b = LtDescriptorHandle.Layout(key.Input, key.K, key.M, key.K);
        var d = LtDescriptorHandle.Layout(key.Output, key.N, key.M, key.N);
        var plan = new Plan(desc, a, b, d);
        try
        {
            int transpose = (int)Interop.CublasOperation.Transpose, none = (int)Interop.CublasOperation.None;
            uint epilogue = (uint)key.Epilogue;
            Check(cublasLtMatmulDescSetAttribute(desc.Native, Interop.LtMatmulDescAttribute.TransA, &transpose, sizeof(int)));
            Check(cublasLtMatmulDescSetAttribute(desc.Native, Interop.LtMatmulDescAttribute.TransB, &none, sizeof(int)));
            Check(cublasLtMatmulDescSetAttribute(desc.Native, Interop.LtMatmulDescAttribute.Epilogue, &epilogue, sizeof(uint)));
            if (!bias.IsNull)
            {
                // The heuristic reads the bias pointer's alignment, so it is set before asking.
                ulong biasPointer = bias.Address;
                Check(cublasLtMatmulDescSetAttribute(desc.Native, Interop.LtMatmulDescAttribute.BiasPointer, &biasPointer, sizeof(ulong)));
            }
            using var preference = LtDescriptorHandle.Preference();
            ulong workspaceBytes = (ulong)workspace.SizeInBytes;
            Check(cublasLtMatmulPreferenceSetAttribute(preference.Native, Interop.LtPreferenceAttribute.MaxWorkspaceBytes, &workspaceBytes, sizeof(ulong)));
            Interop.LtHeuristicResult result;
            Check(cublasLtMatmulAlgoGetHeuristic(handle.DangerousGetHandle(), desc.Native, a.Native, b.Native, d.Native, d.Native,
                preference.Native, 1, &result, out int found));
            if (found == 0 || result.State != Interop.CublasStatus.Success)
            {
                throw Interop.Cublas.Error(CudaLibrary.CublasLt, Interop.CublasStatus.NotSupported,
                    $"cublasLtMatmulAlgoGetHeuristic(m {key.M}, k {key.K}, n {key.N}, {key.Input} -> {key.Output}, {key.Epilogue}): no algorithm");
            }
            plan.Algorithm = result.Algorithm;
            plans.Add(key, plan);
            return plan;
        }
        catch
        {
            plan.Dispose();
            throw;
        }
    }

    private readonly record struct PlanKey(int M, int K, int N, Interop.CudaDataType Input, Interop.CudaDataType Output, MatmulEpilogue Epilogue);

    private sealed class Plan(LtDescriptorHandle desc, LtDescriptorHandle a, LtDescriptorHandle b, LtDescriptorHandle d) : IDisposable
    {
        public LtDescriptorHandle Desc { get; } = desc;

        public LtDescriptorHandle A { get; } = a;

        public LtDescriptorHandle B { get; } = b;

        public LtDescriptorHandle D { get; } = d;

        public Interop.LtMatmulAlgorithm Algorithm { get; set; }

        public void Dispose()
        {
            Desc.Dispose();
            A.Dispose();
            B.Dispose();
            D.Dispose();
        }
    }
}
