using NativeReft.Backends;

namespace NativeReft.Cuda;

/// <summary>
/// What one op must do, whatever kernel does it: the fewest bytes it must move through device memory (each input
/// read once, each output written once; a tensor read and written, as an accumulated gradient, counts twice) and
/// its useful FLOPs. The op profiler sums it per op name, so a step's breakdown shows GB/s and TFLOP/s beside
/// each op's time; the kernel suite divides the same amounts by its timings. Sizes are in elements, bf16 unless
/// the factory says otherwise.
/// </summary>
/// <param name="Bytes">Bytes moved.</param>
/// <param name="Flops">Floating-point operations (a multiply-add is two); 0 for the ops bandwidth bounds.</param>
public readonly record struct OpWork(double Bytes, double Flops)
{
    private const double Bf16 = 2, F32 = 4, Index = 4;

    /// <summary>
    /// FLOPs per byte under which an op is bound by memory bandwidth on any GPU this engine targets: far below the
    /// ridge points (H100 SXM: 989 TFLOP/s over 3.35 TB/s, about 295; A100: about 150).
    /// </summary>
    public const double MemoryBoundIntensity = 32;

    /// <summary>Whether bandwidth, not arithmetic, bounds the op (<see cref="MemoryBoundIntensity"/>).</summary>
    public bool MemoryBound => Flops < MemoryBoundIntensity * Bytes;

    /// <summary>Two ops' work together.</summary>
    public static OpWork operator +(OpWork a, OpWork b) => new(a.Bytes + b.Bytes, a.Flops + b.Flops);

    /// <summary>An op's work done <paramref name="times"/> times.</summary>
    public static OpWork operator *(double times, OpWork work) => new(times * work.Bytes, times * work.Flops);

    /// <summary>
    /// y (m, n) = x (m, k) W^T with W (n, k); with <paramref name="addend"/> an (m, n) tensor is read as well: a
    /// residual added in the epilogue, or the output itself when the product accumulates into it.
    /// </summary>
    public static OpWork Linear(long m, long k, long n, bool addend = false) =>
        new(Bf16 * (m * k + n * k + m * n * (addend ? 2 : 1)), 2.0 * m * n * k);

    /// <summary>dX (m, k) = dY (m, n) W, accumulating into dX or not: the product's bytes and FLOPs.</summary>
    public static OpWork LinearInputGrad(long m, long k, long n, bool accumulate) =>
        new(Bf16 * (m * n + n * k + m * k * (accumulate ? 2 : 1)), 2.0 * m * n * k);

    /// <summary>
    /// RMSNorm over (rows, columns): x read, the output written (4-byte weights when f32), and each row's rstd
    /// when the kernel saves it.
    /// </summary>
    public static OpWork RmsNorm(long rows, long columns, int weightBytes = 2, bool savesRstd = false) =>
        new(Bf16 * 2 * rows * columns + weightBytes * columns + (savesRstd ? F32 * rows : 0), 0);

    /// <summary>The residual add fused with RMSNorm: a and b read, the sum and the normed output written.</summary>
    public static OpWork AddRmsNorm(long rows, long columns, bool savesRstd = false) =>
        new(Bf16 * (4 * rows * columns + columns) + (savesRstd ? F32 * rows : 0), 0);

    /// <summary>RMSNorm's backward: x and dOut read, dX written (and read first when it accumulates).</summary>
    public static OpWork RmsNormBackward(long rows, long columns, int weightBytes = 2, bool accumulate = false, bool readsRstd = false) =>
        new(Bf16 * (3 + (accumulate ? 1 : 0)) * rows * columns + weightBytes * columns + (readsRstd ? F32 * rows : 0), 0);

    /// <summary>RoPE over (rows, columns) in place, with each row's position read (the cos/sin rows stay in cache).</summary>
    public static OpWork Rope(long rows, long columns) => new(Bf16 * 2 * rows * columns + Index * rows, 0);

    /// <summary>SwiGLU over n elements: gate and up read, the output written.</summary>
    public static OpWork SwiGlu(long n) => new(Bf16 * 3 * n, 0);

    /// <summary>SwiGLU's backward over n elements: gate, up and dOut read, dGate and dUp written.</summary>
    public static OpWork SwiGluBackward(long n) => new(Bf16 * 5 * n, 0);

    /// <summary>
    /// Causal attention forward: q read and the output written (queries), k and v read (keys); FLOPs 4 hs per
    /// visible (query, key) pair and head (QK^T and PV); with the log-sum-exp saved for the backward, one f32 per
    /// query row and head.
    /// </summary>
    public static OpWork Attention(AttentionShape shape, bool savesLogSumExp = false)
    {
        var (queries, keys) = Elements(shape);
        double lse = savesLogSumExp ? F32 * shape.Batch * shape.QueryLength * shape.Heads : 0;
        return new(Bf16 * (2 * queries + 2 * keys) + lse, 4.0 * shape.HeadSize * shape.Heads * shape.Batch * VisiblePairs(shape));
    }

    /// <summary>
    /// Attention backward: q, the output (or what stands for it), dOut read and dQ written; k, v read and dK, dV
    /// written. FLOPs 2.5 times the forward's (five products against two), the usual accounting, whatever the
    /// kernels recompute.
    /// </summary>
    public static OpWork AttentionBackward(AttentionShape shape)
    {
        var (queries, keys) = Elements(shape);
        return new(Bf16 * (4 * queries + 4 * keys), 2.5 * Attention(shape).Flops);
    }

    /// <summary>(query, key) pairs a causal mask lets through per sequence and head: query i sees keys 0..offset+i.</summary>
    public static double VisiblePairs(AttentionShape shape)
    {
        long q = shape.QueryLength, first = Math.Min(shape.QueryOffset + 1, shape.KeyLength);
        return q * (double)first + q * (q - 1) / 2.0;
    }

    /// <summary>Cross-entropy fused with its gradient over (rows, vocabulary): logits read, dLogits written, targets and losses.</summary>
    public static OpWork CrossEntropy(long rows, long vocabulary) => new(Bf16 * 2 * rows * vocabulary + (Index + F32) * rows, 0);

    /// <summary>
    /// Rows of width <paramref name="columns"/> gathered or scattered by index: each read once and written once;
    /// a scatter-add reads its destination rows too.
    /// </summary>
    public static OpWork Rows(long rows, long columns, bool adds = false) =>
        new(Bf16 * (adds ? 3 : 2) * rows * columns + Index * rows, 0);

    /// <summary>
    /// An intervention on (rows, dim) rows: forward reads them and writes the output (and the saved input when
    /// <paramref name="savesInput"/>), backward reads them and dOut and writes dH; the f32 parameters are read,
    /// and backward reads and writes their gradients.
    /// </summary>
    public static OpWork Intervention(long rows, long dim, long parameters, bool backward, bool savesInput = false) =>
        new(Bf16 * (backward || savesInput ? 3 : 2) * rows * dim + F32 * parameters * (backward ? 3 : 1), 0);

    /// <summary>AdamW over f32 elements: parameter, gradient and both moments read; parameter and moments written.</summary>
    public static OpWork AdamW(long elements) => new(F32 * 7 * elements, 0);

    /// <summary>
    /// The retraction of matrices of <paramref name="rows"/> rows of <paramref name="columns"/> (f32): two passes of
    /// modified Gram-Schmidt (per row, a dot product and an update against each earlier row, then its norm).
    /// </summary>
    public static OpWork Retraction(long rows, long columns) =>
        new(F32 * 2 * rows * columns, 2 * (2.0 * rows * (rows - 1) * columns + 3.0 * rows * columns));

    /// <summary>An elementwise op over n elements of <paramref name="elementBytes"/> that reads <paramref name="reads"/> tensors and writes one.</summary>
    public static OpWork Elementwise(long n, int elementBytes, int reads) => new((double)elementBytes * (reads + 1) * n, 0);

    /// <summary>A reduction reading n elements of <paramref name="elementBytes"/>.</summary>
    public static OpWork Reduction(long n, int elementBytes) => new((double)elementBytes * n, 0);

    private static (double Queries, double Keys) Elements(AttentionShape shape) =>
        ((double)shape.Batch * shape.QueryLength * shape.Heads * shape.HeadSize,
         (double)shape.Batch * shape.KeyLength * shape.KvHeads * shape.HeadSize);
}
