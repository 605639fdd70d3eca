using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/rmsnorm.cu: RMSNorm forward (alone or fused with the residual add) and backward, over
/// bf16 rows of width C with a bf16 or f32 weight, one block per row. Every method queues one launch on the
/// stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class RmsNormKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "rmsnorm.cu";

    private const int MaxRowBlock = 256;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction forwardFloatWeight;
    private readonly KernelFunction residualForward;
    private readonly KernelFunction residualForwardFloatWeight;
    private readonly KernelFunction addForward;
    private readonly KernelFunction backward;
    private readonly KernelFunction backwardFloatWeight;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public RmsNormKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("rmsnorm_forward");
        forwardFloatWeight = module.GetFunction("rmsnorm_f32w_forward");
        residualForward = module.GetFunction("rmsnorm_residual_forward");
        residualForwardFloatWeight = module.GetFunction("rmsnorm_residual_f32w_forward");
        addForward = module.GetFunction("rmsnorm_add_forward");
        backward = module.GetFunction("rmsnorm_backward");
        backwardFloatWeight = module.GetFunction("rmsnorm_f32w_backward");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>
    /// output = bf16(weight * x * rstd), rstd[r] = 1 / sqrt(mean(x[r]^2) + eps), saved in <paramref name="rstd"/>
    /// for backward (an empty view saves nothing, for inference). x, output (rows, columns); weight (columns).
    /// </summary>
    public void Forward(DeviceView<BFloat16> x, DeviceView<BFloat16> weight, float eps, int rows, int columns,
        DeviceView<BFloat16> output, DeviceView<float> rstd, DeviceStream stream)
    {
        if (Check(x.Length, weight.Length, output.Length, rstd, rows, columns, "rmsnorm"))
        {
            runtime.Launch(forward, Rows(rows, columns), stream, output.Pointer, rstd.Pointer, x.Pointer, weight.Pointer, eps, rows, columns);
        }
    }

    /// <summary>As <see cref="Forward(DeviceView{BFloat16}, DeviceView{BFloat16}, float, int, int, DeviceView{BFloat16}, DeviceView{float}, DeviceStream)"/> with an f32 weight.</summary>
    public void Forward(DeviceView<BFloat16> x, DeviceView<float> weight, float eps, int rows, int columns,
        DeviceView<BFloat16> output, DeviceView<float> rstd, DeviceStream stream)
    {
        if (Check(x.Length, weight.Length, output.Length, rstd, rows, columns, "rmsnorm"))
        {
            runtime.Launch(forwardFloatWeight, Rows(rows, columns), stream, output.Pointer, rstd.Pointer, x.Pointer, weight.Pointer, eps, rows, columns);
        }
    }

    /// <summary>
    /// residual = bf16(residual + branch) in place, then output = rmsnorm(residual) as <see cref="Forward(DeviceView{BFloat16}, DeviceView{BFloat16}, float, int, int, DeviceView{BFloat16}, DeviceView{float}, DeviceStream)"/>:
    /// the add that closes one sublayer fused with the norm that opens the next. residual, branch, output (rows, columns).
    /// </summary>
    public void ResidualForward(DeviceView<BFloat16> residual, DeviceView<BFloat16> branch, DeviceView<BFloat16> weight, float eps,
        int rows, int columns, DeviceView<BFloat16> output, DeviceView<float> rstd, DeviceStream stream)
    {
        RequireLength(branch.Length, (long)rows * columns, "rmsnorm residual: branch");
        if (Check(residual.Length, weight.Length, output.Length, rstd, rows, columns, "rmsnorm residual"))
        {
            runtime.Launch(residualForward, Rows(rows, columns), stream, output.Pointer, rstd.Pointer, residual.Pointer, branch.Pointer, weight.Pointer, eps, rows, columns);
        }
    }

    /// <summary>As <see cref="ResidualForward(DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{BFloat16}, float, int, int, DeviceView{BFloat16}, DeviceView{float}, DeviceStream)"/> with an f32 weight.</summary>
    public void ResidualForward(DeviceView<BFloat16> residual, DeviceView<BFloat16> branch, DeviceView<float> weight, float eps,
        int rows, int columns, DeviceView<BFloat16> output, DeviceView<float> rstd, DeviceStream stream)
    {
        RequireLength(branch.Length, (long)rows * columns, "rmsnorm residual: branch");
        if (Check(residual.Length, weight.Length, output.Length, rstd, rows, columns, "rmsnorm residual"))
        {
            runtime.Launch(residualForwardFloatWeight, Rows(rows, columns), stream, output.Pointer, rstd.Pointer, residual.Pointer, branch.Pointer, weight.Pointer, eps, rows, columns);
        }
    }

    /// <summary>
    /// sum = bf16(a + b), then output = rmsnorm(sum) as <see cref="ResidualForward(DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{BFloat16}, float, int, int, DeviceView{BFloat16}, DeviceView{float}, DeviceStream)"/>,
    /// out of place (sum may be a): the residual add and the next norm in one pass when the caller keeps a.
    /// a, b, sum, output (rows, columns).
    /// </summary>
    public void AddForward(DeviceView<BFloat16> a, DeviceView<BFloat16> b, DeviceView<BFloat16> weight, float eps, int rows, int columns,
        DeviceView<BFloat16> sum, DeviceView<BFloat16> output, DeviceView<float> rstd, DeviceStream stream)
    {
        RequireLength(b.Length, (long)rows * columns, "rmsnorm add: b");
        RequireLength(sum.Length, (long)rows * columns, "rmsnorm add: sum");
        if (Check(a.Length, weight.Length, output.Length, rstd, rows, columns, "rmsnorm add"))
        {
            runtime.Launch(addForward, Rows(rows, columns), stream, output.Pointer, rstd.Pointer, sum.Pointer, a.Pointer, b.Pointer,
                weight.Pointer, eps, rows, columns);
        }
    }

    /// <summary>
    /// dX = rstd * weight * dOut - x * rstd^3 * mean(x * weight * dOut), written (an activation gradient), or added
    /// to dX when <paramref name="accumulate"/> (the residual stream's gradient), with the rstd that forward saved,
    /// or recomputed from x and <paramref name="eps"/> when <paramref name="rstd"/> is empty. x, dOut, dX
    /// (rows, columns), dX aliasing neither; weight (columns); rstd (rows).
    /// </summary>
    public void Backward(DeviceView<BFloat16> x, DeviceView<BFloat16> weight, DeviceView<float> rstd, float eps, DeviceView<BFloat16> dOut,
        int rows, int columns, DeviceView<BFloat16> dX, DeviceStream stream, bool accumulate = false)
    {
        if (CheckBackward(x.Length, weight.Length, rstd, dOut.Length, dX.Length, rows, columns))
        {
            runtime.Launch(backward, Rows(rows, columns), stream, dX.Pointer, dOut.Pointer, x.Pointer, weight.Pointer, rstd.Pointer, eps, rows, columns,
                accumulate ? 1 : 0);
        }
    }

    /// <summary>As <see cref="Backward(DeviceView{BFloat16}, DeviceView{BFloat16}, DeviceView{float}, float, DeviceView{BFloat16}, int, int, DeviceView{BFloat16}, DeviceStream, bool)"/> with an f32 weight.</summary>
    public void Backward(DeviceView<BFloat16> x, DeviceView<float> weight, DeviceView<float> rstd, float eps, DeviceView<BFloat16> dOut,
        int rows, int columns, DeviceView<BFloat16> dX, DeviceStream stream, bool accumulate = false)
    {
        if (CheckBackward(x.Length, weight.Length, rstd, dOut.Length, dX.Length, rows, columns))
        {
            runtime.Launch(backwardFloatWeight, Rows(rows, columns), stream, dX.Pointer, dOut.Pointer, x.Pointer, weight.Pointer, rstd.Pointer, eps, rows, columns,
                accumulate ? 1 : 0);
        }
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    // One block per row; two columns per thread at least, so a narrow model (dim 64) runs one warp per row instead
    // of eight mostly idle ones, and wide rows get 256 threads.
    private static LaunchConfig Rows(int rows, int columns) =>
        new((uint)rows, (uint)Math.Min(MaxRowBlock, ((columns + 1) / 2 + 31) / 32 * 32));

    // True when there is work to launch.
    private static bool Check(long x, long weight, long output, DeviceView<float> rstd, int rows, int columns, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        RequireLength(x, (long)rows * columns, what + ": x");
        RequireLength(output, (long)rows * columns, what + ": output");
        RequireLength(weight, columns, what + ": weight");
        if (!rstd.IsEmpty)
        {
            RequireLength(rstd.Length, rows, what + ": rstd");
        }
        return rows > 0;
    }

    private static bool CheckBackward(long x, long weight, DeviceView<float> rstd, long dOut, long dX, int rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        RequireLength(x, (long)rows * columns, "rmsnorm backward: x");
        RequireLength(dOut, (long)rows * columns, "rmsnorm backward: dOut");
        RequireLength(dX, (long)rows * columns, "rmsnorm backward: dX");
        RequireLength(weight, columns, "rmsnorm backward: weight");
        if (!rstd.IsEmpty)
        {
            RequireLength(rstd.Length, rows, "rmsnorm backward: rstd");
        }
        return rows > 0;
    }

    private static void RequireLength(long actual, long expected, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{what} has {actual} elements, expected {expected}");
        }
    }
}
