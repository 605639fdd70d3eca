using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// One intervention's parameters on the device, in the unified form of <see cref="InterventionTensors"/>:
/// Phi(h) = h + P^T (act(W h + b) - [SubtractProjection] P h), act(b) in place of act(W h + b) when there is no W.
/// The same record carries the gradients (same shapes; their <see cref="SubtractProjection"/> and
/// <see cref="Activation"/> are not read).
/// </summary>
/// <param name="P">(Rank, dim) f32: the projection (R or W2).</param>
/// <param name="W">(Rank, dim) f32: the learned source's weight, or an empty view when the source is act(b).</param>
/// <param name="B">(Rank) f32: the source's bias.</param>
/// <param name="Rank">r, 1 to <see cref="InterventionKernels.MaxRank"/>.</param>
/// <param name="SubtractProjection">Whether P h is subtracted from the source (LoReFT, NoReFT, ConsReFT).</param>
/// <param name="Activation">Applied to W h + b (or to b).</param>
public readonly record struct InterventionParameters(DeviceView<float> P, DeviceView<float> W, DeviceView<float> B, int Rank,
    bool SubtractProjection, Activation Activation)
{
    /// <summary>Whether the source is learned (act(W h + b)) rather than the constant act(b).</summary>
    public bool HasWeight => !W.IsEmpty;
}

/// <summary>
/// The launcher for kernels/intervention.cu: the fused ReFT intervention Phi(h) = (h + P^T delta) * m,
/// delta = act(W h + b) - [subtract] P h, forward and backward, exactly CpuBackend's Intervene and
/// InterveneBackward on the rows it edits. Every method queues its launches on the stream given and returns (no
/// synchronization); shapes are checked first.
/// </summary>
/// <remarks>
/// <para>
/// Rows: with an empty <c>rows</c> view the tensors are the N = count gathered rows (the IBackend contract). With a
/// row list (count int32 indices, distinct) the kernels work on the residual stream itself, M rows of width dim:
/// the residual-stream tensors (forward's input and output; backward's dOut and dH) are read and written at row
/// rows[i], and only there; the per-intervened-row tensors (forward's savedInput; backward's input, the
/// dropout scale, the scratch) are compact, row i. An index outside [0, M) touches nothing (no output row, no
/// gradient contribution) and sets error[0] = 1 (error may be empty: no report).
/// </para>
/// <para>
/// In place: forward's output may be its input (the residual stream edited where it lies); pass savedInput to
/// keep the rows before the edit, which backward needs as its (compact) input. Backward's dH may be its dOut (the
/// stream's gradient at those rows becomes the gradient before the edit).
/// </para>
/// <para>
/// Backward is deterministic (no float atomics): two runs give the same bits.
/// </para>
/// </remarks>
public sealed class InterventionKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "intervention.cu";

    /// <summary>
    /// The largest rank the kernels take. Each output element costs O(r) (the r parameter values of its column),
    /// which suits the ranks ReFT uses (1 to 64); far above that a GEMM formulation would be the better kernel.
    /// </summary>
    public const int MaxRank = 256;

    private const int MaxBlock = 256;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction coefficients;
    private readonly KernelFunction parameterGradients;
    private readonly KernelFunction inputGradient;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public InterventionKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("intervention_forward");
        coefficients = module.GetFunction("intervention_backward_coeffs");
        parameterGradients = module.GetFunction("intervention_backward_parameters");
        inputGradient = module.GetFunction("intervention_backward_input");
        Debug.Assert(Unsafe.SizeOf<NativeParameters>() == 40 && Unsafe.SizeOf<NativeRows>() == 24, "the C structs' sizes");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>The f32 elements of <see cref="Backward"/>'s scratch: (count, 3 rank), per row [delta | P g | dv].</summary>
    public static long BackwardScratchLength(int count, int rank)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegative(rank);
        return 3L * count * rank;
    }

    /// <summary>
    /// output[rows[i]] = bf16((h + P^T delta) * dropoutScale[i]), h = input[rows[i]], delta = act(W h + b) - [subtract] P h,
    /// for i in [0, count) (rows empty: row i). input, output (M, dim), M = count when rows is empty, output == input
    /// allowed (in place); dropoutScale (count, dim) or empty (no dropout); savedInput (count, dim) receives the
    /// input rows (exact) or is empty; error one int or empty.
    /// </summary>
    public void Forward(DeviceView<BFloat16> input, DeviceView<int> rows, int count, int dim, InterventionParameters p,
        DeviceView<float> dropoutScale, DeviceView<BFloat16> output, DeviceView<BFloat16> savedInput, DeviceView<int> error,
        DeviceStream stream)
    {
        const string what = "intervention forward";
        int residualRows = CheckRows(input.Length, rows, count, dim, what + ": input");
        var native = CheckParameters(p, dim, what);
        RequireLength(output.Length, input.Length, what + ": output (the same rows as input)");
        RequireSameOrDisjoint(input, output, what + ": output and input");
        RequireOptional(dropoutScale.Length, (long)count * dim, what + ": dropout scale");
        RequireOptional(savedInput.Length, (long)count * dim, what + ": saved input");
        RequireDisjoint(savedInput, input, what + ": saved input and input");
        RequireDisjoint(savedInput, output, what + ": saved input and output");
        RequireOptional(error.Length, 1, what + ": error flag");
        if (count == 0)
        {
            return;
        }
        runtime.Launch(forward, RowLaunch(count, dim, p.Rank), stream, output.Pointer, Optional(savedInput), input.Pointer,
            Optional(dropoutScale), new NativeRows(rows, error, count, residualRows), native);
    }

    /// <summary>
    /// The backward of <see cref="Forward"/>, three launches: per row g = dOut[rows[i]] * dropoutScale[i], the
    /// coefficients delta, pg = P g, dv = pg * act'(W h + b) into <paramref name="scratch"/>; then the parameter
    /// gradients, accumulated (dP += delta g^T - [subtract] pg h^T, dW += dv h^T, db += dv, summed over rows in
    /// order); then dH[rows[i]] = g - [subtract] P^T pg + W^T dv, written. input (count, dim) compact: the rows before
    /// the edit (forward's savedInput, or the gathered h); dOut, dH (M, dim), M = count when rows is empty, dH == dOut
    /// allowed (in place); dropoutScale (count, dim) or empty; gradients with p's shapes (W present exactly when p's
    /// is); scratch at least <see cref="BackwardScratchLength"/>(count, rank) floats; error one int or empty.
    /// </summary>
    public void Backward(DeviceView<BFloat16> input, DeviceView<int> rows, int count, int dim, InterventionParameters p,
        DeviceView<BFloat16> dOut, DeviceView<float> dropoutScale, DeviceView<BFloat16> dH, InterventionParameters gradients,
        DeviceView<float> scratch, DeviceView<int> error, DeviceStream stream)
    {
        const string what = "intervention backward";
        int residualRows = CheckRows(dOut.Length, rows, count, dim, what + ": dOut");
        var native = CheckParameters(p, dim, what);
        RequireLength(input.Length, (long)count * dim, what + ": input (the compact rows before the edit)");
        RequireLength(dH.Length, dOut.Length, what + ": dH (the same rows as dOut)");
        RequireSameOrDisjoint(dOut, dH, what + ": dH and dOut");
        RequireOptional(dropoutScale.Length, (long)count * dim, what + ": dropout scale");
        RequireOptional(error.Length, 1, what + ": error flag");
        if (gradients.Rank != p.Rank || gradients.HasWeight != p.HasWeight)
        {
            throw new ArgumentException($"{what}: gradients of rank {gradients.Rank} {(gradients.HasWeight ? "with" : "without")} W for parameters of rank {p.Rank} {(p.HasWeight ? "with" : "without")} W");
        }
        RequireLength(gradients.P.Length, (long)p.Rank * dim, what + ": dP");
        RequireLength(gradients.W.Length, p.W.Length, what + ": dW");
        RequireLength(gradients.B.Length, p.Rank, what + ": db");
        long scratchLength = BackwardScratchLength(count, p.Rank);
        if (scratch.Length < scratchLength)
        {
            throw new ArgumentException($"{what}: scratch has {scratch.Length} floats, needs {scratchLength} ({count} rows x 3 x rank {p.Rank})");
        }
        if (count == 0)
        {
            return;
        }
        var nativeRows = new NativeRows(rows, error, count, residualRows);
        var rowLaunch = RowLaunch(count, dim, p.Rank);
        var scale = Optional(dropoutScale);
        runtime.Launch(coefficients, rowLaunch, stream, scratch.Pointer, input.Pointer, dOut.Pointer, scale, nativeRows, native);
        int block = Block(dim);
        var columns = new LaunchConfig(new Dim3((uint)((dim + block - 1) / block), (uint)p.Rank), (uint)block);
        runtime.Launch(parameterGradients, columns, stream, gradients.P.Pointer, Optional(gradients.W), gradients.B.Pointer,
            scratch.Pointer, input.Pointer, dOut.Pointer, scale, nativeRows, native);
        runtime.Launch(inputGradient, rowLaunch, stream, dH.Pointer, dOut.Pointer, scale, scratch.Pointer, nativeRows, native);
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    // Threads per row block: a warp per 32 columns up to 256, so narrow rows do not idle a large block.
    private static int Block(int dim) => Math.Clamp((dim + 31) / 32 * 32, 32, MaxBlock);

    // One block per row; shared memory holds delta (r floats) and the dot products' partial sums, at most one per
    // (dot, segment): max(3r, warps) floats.
    private static LaunchConfig RowLaunch(int count, int dim, int rank)
    {
        int block = Block(dim);
        int shared = (rank + Math.Max(3 * rank, block / 32)) * sizeof(float);
        return new LaunchConfig((uint)count, (uint)block, shared);
    }

    // M, the rows of the residual-stream tensors.
    private static int CheckRows(long streamLength, DeviceView<int> rows, int count, int dim, string what)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(dim);
        if (rows.IsEmpty)
        {
            RequireLength(streamLength, (long)count * dim, what);
            return count;
        }
        RequireLength(rows.Length, count, what + ": row list");
        if (streamLength % dim != 0 || streamLength / dim > int.MaxValue)
        {
            throw new ArgumentException($"{what} has {streamLength} elements: not rows of {dim}");
        }
        return (int)(streamLength / dim);
    }

    private static NativeParameters CheckParameters(InterventionParameters p, int dim, string what)
    {
        if (p.Rank < 1 || p.Rank > MaxRank)
        {
            throw new ArgumentOutOfRangeException(nameof(p), p.Rank, $"{what}: rank {p.Rank} is outside 1 to {MaxRank} (InterventionKernels.MaxRank)");
        }
        RequireLength(p.P.Length, (long)p.Rank * dim, what + ": P");
        RequireOptional(p.W.Length, (long)p.Rank * dim, what + ": W");
        RequireLength(p.B.Length, p.Rank, what + ": b");
        int activation = p.Activation switch
        {
            Activation.Linear => 0,
            Activation.Relu => 1,
            Activation.Silu => 2,
            Activation.Tanh => 3,
            _ => throw new ArgumentOutOfRangeException(nameof(p), p.Activation, $"{what}: unknown activation"),
        };
        return new NativeParameters(p.P.Pointer, Optional(p.W), p.B.Pointer, p.Rank, dim, p.SubtractProjection ? 1 : 0, activation);
    }

    // The kernels take null for "absent"; an empty slice of a buffer still has an address.
    private static DevicePointer Optional<T>(DeviceView<T> view)
        where T : unmanaged => view.IsEmpty ? DevicePointer.Null : view.Pointer;

    private static void RequireLength(long actual, long expected, string what)
    {
        if (actual != expected)
        {
            throw new ArgumentException($"{what} has {actual} elements, expected {expected}");
        }
    }

    private static void RequireOptional(long actual, long expected, string what)
    {
        if (actual != 0 && actual != expected)
        {
            throw new ArgumentException($"{what} has {actual} elements, expected {expected} (or none)");
        }
    }

    // Row-wise in-place is safe; a partial overlap (a shifted view) is not.
    private static void RequireSameOrDisjoint<T>(DeviceView<T> a, DeviceView<T> b, string what)
        where T : unmanaged
    {
        if (a != b)
        {
            RequireDisjoint(a, b, what);
        }
    }

    private static void RequireDisjoint<T>(DeviceView<T> a, DeviceView<T> b, string what)
        where T : unmanaged
    {
        ulong a0 = a.Pointer.Address, b0 = b.Pointer.Address;
        if (!a.IsEmpty && !b.IsEmpty && a0 < b0 + (ulong)b.SizeInBytes && b0 < a0 + (ulong)a.SizeInBytes)
        {
            throw new ArgumentException($"{what} overlap");
        }
    }

    // struct InterventionParams in kernels/intervention.cu, passed by value: keep the fields in the same order.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct NativeParameters(DevicePointer projection, DevicePointer weight, DevicePointer bias, int rank, int dim,
        int subtract, int activation)
    {
        private readonly DevicePointer projection = projection;
        private readonly DevicePointer weight = weight;
        private readonly DevicePointer bias = bias;
        private readonly int rank = rank;
        private readonly int dim = dim;
        private readonly int subtract = subtract;
        private readonly int activation = activation;
    }

    // struct InterventionRows in kernels/intervention.cu, passed by value.
    [StructLayout(LayoutKind.Sequential)]
    private readonly struct NativeRows(DeviceView<int> rows, DeviceView<int> error, int count, int residualRows)
    {
        private readonly DevicePointer index = Optional(rows);
        private readonly DevicePointer error = Optional(error);
        private readonly int count = count;
        private readonly int residualRows = residualRows;
    }
}
