using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/elementwise.cu: fill, axpy, bf16 add, in-place scale, f32/bf16 casts and row sums of squares. Every
/// method queues one launch on the stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class ElementwiseKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "elementwise.cu";

    private const int RowBlock = 256;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction fill;
    private readonly KernelFunction axpy;
    private readonly KernelFunction add;
    private readonly KernelFunction scale;
    private readonly KernelFunction scaleBFloat16;
    private readonly KernelFunction uniform;
    private readonly KernelFunction dropoutScale;
    private readonly KernelFunction castToBFloat16;
    private readonly KernelFunction castToFloat;
    private readonly KernelFunction rowSumSquares;
    private readonly KernelFunction rowSumSquaresFloat;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public ElementwiseKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        fill = module.GetFunction("fill_forward");
        axpy = module.GetFunction("axpy_forward");
        add = module.GetFunction("add_forward");
        scale = module.GetFunction("scale_forward");
        scaleBFloat16 = module.GetFunction("scale_bf16_forward");
        uniform = module.GetFunction("uniform_bf16_forward");
        dropoutScale = module.GetFunction("dropout_scale_forward");
        castToBFloat16 = module.GetFunction("cast_f32_to_bf16_forward");
        castToFloat = module.GetFunction("cast_bf16_to_f32_forward");
        rowSumSquares = module.GetFunction("rowsumsq_forward");
        rowSumSquaresFloat = module.GetFunction("rowsumsq_f32_forward");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>output[i] = value.</summary>
    public void Fill(DeviceView<float> output, float value, DeviceStream stream)
    {
        if (output.IsEmpty)
        {
            return;
        }
        runtime.Launch(fill, LaunchConfig.ForElements(output.Length), stream, output.Pointer, value, output.Length);
    }

    /// <summary>y[i] += alpha * x[i] (the gradient accumulate).</summary>
    public void Axpy(DeviceView<float> y, float alpha, DeviceView<float> x, DeviceStream stream)
    {
        RequireSameLength(y.Length, x.Length, "axpy: x and y");
        if (y.IsEmpty)
        {
            return;
        }
        runtime.Launch(axpy, LaunchConfig.ForElements(y.Length), stream, y.Pointer, x.Pointer, alpha, y.Length);
    }

    /// <summary>output[i] = bf16(float(a[i]) + float(b[i])); output may be a.</summary>
    public void Add(DeviceView<BFloat16> a, DeviceView<BFloat16> b, DeviceView<BFloat16> output, DeviceStream stream)
    {
        RequireSameLength(a.Length, b.Length, "add: a and b");
        RequireSameLength(a.Length, output.Length, "add: a and output");
        if (a.IsEmpty)
        {
            return;
        }
        runtime.Launch(add, LaunchConfig.ForBFloat16Packs(a.Length), stream, output.Pointer, a.Pointer, b.Pointer, a.Length);
    }

    /// <summary>x[i] *= factor, in place.</summary>
    public void Scale(DeviceView<float> x, float factor, DeviceStream stream)
    {
        if (!x.IsEmpty)
        {
            runtime.Launch(scale, LaunchConfig.ForElements(x.Length), stream, x.Pointer, factor, x.Length);
        }
    }

    /// <summary>x[i] = bf16(float(x[i]) * factor), in place.</summary>
    public void Scale(DeviceView<BFloat16> x, float factor, DeviceStream stream)
    {
        if (!x.IsEmpty)
        {
            runtime.Launch(scaleBFloat16, LaunchConfig.ForElements(x.Length), stream, x.Pointer, factor, x.Length);
        }
    }

    /// <summary>
    /// output[i] = bf16(scale * (2 u - 1)), u uniform in [0, 1) from (seed, i): the same values as the host's
    /// <see cref="Backends.CounterHash.Uniform"/>, rounded to bf16.
    /// </summary>
    public void FillUniform(DeviceView<BFloat16> output, ulong seed, float scale, DeviceStream stream)
    {
        if (!output.IsEmpty)
        {
            runtime.Launch(uniform, LaunchConfig.ForElements(output.Length), stream, output.Pointer, seed, scale, output.Length);
        }
    }

    /// <summary>
    /// output[i] = 0 where the mask seeded by <paramref name="seed"/> drops element i with
    /// <paramref name="probability"/>, else (float)(1 / (1 - probability)): the host's
    /// <see cref="Backends.CounterHash.Drops"/>, bit for bit.
    /// </summary>
    public void FillDropoutScale(DeviceView<float> output, ulong seed, double probability, DeviceStream stream)
    {
        if (!output.IsEmpty)
        {
            float keep = (float)(1 / (1 - probability));
            runtime.Launch(dropoutScale, LaunchConfig.ForElements(output.Length), stream, output.Pointer, seed, probability, keep, output.Length);
        }
    }

    /// <summary>output[i] = bf16(x[i]), round to nearest even.</summary>
    public void Cast(DeviceView<float> x, DeviceView<BFloat16> output, DeviceStream stream)
    {
        RequireSameLength(x.Length, output.Length, "cast: x and output");
        if (x.IsEmpty)
        {
            return;
        }
        runtime.Launch(castToBFloat16, LaunchConfig.ForElements(x.Length), stream, output.Pointer, x.Pointer, x.Length);
    }

    /// <summary>output[i] = float(x[i]), exact.</summary>
    public void Cast(DeviceView<BFloat16> x, DeviceView<float> output, DeviceStream stream)
    {
        RequireSameLength(x.Length, output.Length, "cast: x and output");
        if (x.IsEmpty)
        {
            return;
        }
        runtime.Launch(castToFloat, LaunchConfig.ForElements(x.Length), stream, output.Pointer, x.Pointer, x.Length);
    }

    /// <summary>output[r] = sum over c of float(x[r, c])^2, in fp32. x (rows, columns), output (rows).</summary>
    public void RowSumSquares(DeviceView<BFloat16> x, int rows, int columns, DeviceView<float> output, DeviceStream stream) =>
        LaunchRowSumSquares(rowSumSquares, x.Pointer, x.Length, rows, columns, output, stream);

    /// <summary>output[r] = sum over c of x[r, c]^2. x (rows, columns), output (rows).</summary>
    public void RowSumSquares(DeviceView<float> x, int rows, int columns, DeviceView<float> output, DeviceStream stream) =>
        LaunchRowSumSquares(rowSumSquaresFloat, x.Pointer, x.Length, rows, columns, output, stream);

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    private void LaunchRowSumSquares(KernelFunction function, DevicePointer x, long length, int rows, int columns, DeviceView<float> output, DeviceStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        RequireSameLength(length, (long)rows * columns, "rowsumsq: x and rows * columns");
        RequireSameLength(output.Length, rows, "rowsumsq: output and rows");
        if (rows == 0)
        {
            return;
        }
        runtime.Launch(function, new LaunchConfig((uint)rows, RowBlock), stream, output.Pointer, x, rows, columns);
    }

    private static void RequireSameLength(long a, long b, string what)
    {
        if (a != b)
        {
            throw new ArgumentException($"{what} differ in length ({a} and {b})");
        }
    }
}
