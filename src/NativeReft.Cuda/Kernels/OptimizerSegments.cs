using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

// The rows of the device-resident tables that kernels/optimizer.cu reads: each struct mirrors the C struct of the
// same name field for field. Sequential layout, every field 8 bytes or two 4-byte fields in a row, so the C#
// layout has no padding a C compiler would place differently; the sizes are also static_asserted in the kernel
// file, and OptimizerKernelSuite checks every size and offset against what the compiled kernel reports.

/// <summary>
/// One tensor of an AdamW table: parameter, gradient and the two moments, all f32 of <see cref="Length"/>
/// elements, and its decoupled weight decay. Mirrors <c>struct AdamWSegment</c> in kernels/optimizer.cu:
/// offsets 0, 8, 16, 24 (pointers), 32 (i64 length), 40 (double weight decay); 48 bytes.
/// </summary>
/// <param name="Parameter">The parameter, updated in place.</param>
/// <param name="Gradient">Its gradient, read.</param>
/// <param name="M">The first moment, updated in place.</param>
/// <param name="V">The second moment, updated in place.</param>
/// <param name="Length">Elements of each of the four tensors.</param>
/// <param name="WeightDecay">Decoupled weight decay (0: none).</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct AdamWSegment(DevicePointer Parameter, DevicePointer Gradient, DevicePointer M, DevicePointer V, long Length,
    double WeightDecay)
{
    /// <summary>The size of the C struct, and of this one.</summary>
    public const int SizeInBytes = 48;

    /// <summary>A segment over four views of one length (checked).</summary>
    /// <exception cref="ArgumentException">The views' lengths differ.</exception>
    public AdamWSegment(DeviceView<float> parameter, DeviceView<float> gradient, DeviceView<float> m, DeviceView<float> v, double weightDecay)
        : this(parameter.Pointer, gradient.Pointer, m.Pointer, v.Pointer, parameter.Length, weightDecay)
    {
        if (gradient.Length != parameter.Length || m.Length != parameter.Length || v.Length != parameter.Length)
        {
            throw new ArgumentException($"adamw segment: parameter {parameter.Length}, gradient {gradient.Length}, m {m.Length}, v {v.Length} elements; they must agree");
        }
    }
}

/// <summary>
/// One f32 tensor of a norm or scaling table. Mirrors <c>struct TensorSegment</c> in kernels/optimizer.cu:
/// offsets 0 (pointer), 8 (i64 length); 16 bytes.
/// </summary>
/// <param name="Data">The first element.</param>
/// <param name="Length">Elements.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct TensorSegment(DevicePointer Data, long Length)
{
    /// <summary>The size of the C struct, and of this one.</summary>
    public const int SizeInBytes = 16;

    /// <summary>The segment of a whole view.</summary>
    public TensorSegment(DeviceView<float> tensor)
        : this(tensor.Pointer, tensor.Length)
    {
    }
}

/// <summary>
/// One row-major f32 matrix (<see cref="Rows"/>, <see cref="Columns"/>) of a retraction table. Mirrors
/// <c>struct MatrixSegment</c> in kernels/optimizer.cu: offsets 0 (pointer), 8 (int rows), 12 (int columns);
/// 16 bytes.
/// </summary>
/// <param name="Data">The first element.</param>
/// <param name="Rows">Rows (r, at most <paramref name="Columns"/>).</param>
/// <param name="Columns">Columns (d).</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct MatrixSegment(DevicePointer Data, int Rows, int Columns)
{
    /// <summary>The size of the C struct, and of this one.</summary>
    public const int SizeInBytes = 16;

    /// <summary>The segment of a view holding a (rows, columns) matrix, 1 &lt;= rows &lt;= columns (checked).</summary>
    /// <exception cref="ArgumentException">The shape does not fit the view or has more rows than columns.</exception>
    public MatrixSegment(DeviceView<float> matrix, int rows, int columns)
        : this(matrix.Pointer, rows, columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (matrix.Length != (long)rows * columns)
        {
            throw new ArgumentException($"matrix segment: {matrix.Length} elements do not hold {rows} x {columns}");
        }
        if (rows > columns)
        {
            throw new ArgumentException($"matrix segment: cannot make {rows} rows of width {columns} orthonormal (rows must not exceed columns)");
        }
    }
}

/// <summary>
/// The scalars of one training step that stay on the device until its end. Mirrors <c>struct StepValues</c> in
/// kernels/optimizer.cu: offsets 0 (double loss), 8 (double squared gradient norm), 16 (double learning rate),
/// 24 and 28 (float bias corrections); 32 bytes.
/// </summary>
/// <param name="Loss">The step's summed loss (the cross-entropy adds each micro-batch's).</param>
/// <param name="SumOfSquares">The gradients' squared global norm.</param>
/// <param name="LearningRate">AdamW's learning rate for the step.</param>
/// <param name="InverseBiasCorrection1">1 / (1 - beta1^t), computed in double, rounded to float.</param>
/// <param name="InverseSqrtBiasCorrection2">1 / sqrt(1 - beta2^t), likewise.</param>
[StructLayout(LayoutKind.Sequential)]
public readonly record struct StepValues(double Loss, double SumOfSquares, double LearningRate, float InverseBiasCorrection1,
    float InverseSqrtBiasCorrection2)
{
    /// <summary>The size of the C struct, and of this one.</summary>
    public const int SizeInBytes = 32;

    /// <summary>
    /// A step's starting values: no loss or norm yet, and the optimizer's inputs for the 1-based
    /// <paramref name="step"/> (the bias corrections as CpuBackend computes them, in double, to the bit).
    /// </summary>
    public static StepValues Start(double learningRate, double beta1, double beta2, int step)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(step, 1);
        double c1 = 1 - Math.Pow(beta1, step);
        double c2 = 1 - Math.Pow(beta2, step);
        return new StepValues(0, 0, learningRate, (float)(1 / c1), (float)(1 / Math.Sqrt(c2)));
    }
}
