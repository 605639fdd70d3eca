using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

// The parameter side of a training step: each op over every parameter of an intervention set in one launch,
// through a table of segments copied to the device (tens to hundreds of small f32 tensors).
public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void AdamW(Tensor parameter, Tensor gradient, Tensor m, Tensor v, in AdamWStep step) =>
        AdamW([new AdamWTarget(parameter, gradient, m, v, Decay: true)], step);

    /// <inheritdoc />
    public void AdamW(IReadOnlyList<AdamWTarget> targets, in AdamWStep step)
    {
        using var values = Stage<StepValues>([StepValues.Start(step.LearningRate, step.Beta1, step.Beta2, step.Step)]);
        QueueAdamW(targets, step, values.View);
    }

    /// <inheritdoc />
    public double SumOfSquares(Tensor x) => SumOfSquares([x]);

    /// <summary>One deterministic reduction over every tensor (f32), its double result copied back.</summary>
    public double SumOfSquares(IReadOnlyList<Tensor> tensors)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var op = Op("gradient norm", OpWork.Reduction(Elements(tensors), 4));
        using var segments = Stage<TensorSegment>(Segments(tensors));
        using var result = new DeviceBuffer<double>(Runtime, 1);
        QueueSumOfSquares(segments.View, tensors.Count, result.View);
        Span<double> sum = stackalloc double[1];
        Runtime.CopyToHost(result.View, sum);
        ThrowIfKernelReportedError(); // the host waits here anyway: the place to surface a kernel's flag
        return sum[0];
    }

    /// <inheritdoc />
    public void Scale(IReadOnlyList<Tensor> tensors, double factor)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        using var op = Op("scale", OpWork.Elementwise(Elements(tensors), 4, reads: 1));
        using var segments = Stage<TensorSegment>(Segments(tensors));
        optimizer.Scale(segments.View, tensors.Count, (float)factor, Stream);
    }

    /// <inheritdoc />
    public void OrthonormalizeRows(Tensor matrix) => OrthonormalizeRows([matrix]);

    /// <inheritdoc />
    public void OrthonormalizeRows(IReadOnlyList<Tensor> matrices) => QueueOrthonormalizeRows(matrices, default);

    // The step's learning rate and bias corrections are read from `values` on the device.
    private void QueueAdamW(IReadOnlyList<AdamWTarget> targets, in AdamWStep step, DeviceView<StepValues> values)
    {
        ArgumentNullException.ThrowIfNull(targets);
        using var op = Op("adamw", OpWork.AdamW(targets.Sum(t => (long)t.Parameter.Length)));
        var table = new AdamWSegment[targets.Count];
        for (int i = 0; i < table.Length; i++)
        {
            var t = targets[i];
            var p = Cast(t.Parameter);
            foreach (var other in new[] { t.Gradient, t.M, t.V })
            {
                RequireSameShape(p, Cast(other), "adamw");
            }
            table[i] = new AdamWSegment(p.Float, Cast(t.Gradient).Float, Cast(t.M).Float, Cast(t.V).Float, t.Decay ? step.WeightDecay : 0);
        }
        using var segments = Stage<AdamWSegment>(table);
        optimizer.AdamW(segments.View, table.Length, values, step.Beta1, step.Beta2, step.Epsilon, Stream);
    }

    // The sum over the first `count` tensors of a staged table, into `result` on the device.
    private void QueueSumOfSquares(DeviceView<TensorSegment> segments, int count, DeviceView<double> result)
    {
        using var partials = new DeviceBuffer<float>(Runtime, Math.Max(1, OptimizerKernels.SumOfSquaresPartialsLength(count)));
        optimizer.SumOfSquares(segments, count, partials.View, result, Stream);
    }

    // With step values (not empty), nothing changes when that step's loss or norm is not finite.
    private void QueueOrthonormalizeRows(IReadOnlyList<Tensor> matrices, DeviceView<StepValues> step)
    {
        ArgumentNullException.ThrowIfNull(matrices);
        using var op = Op("retraction", matrices.Aggregate(default(OpWork), (w, m) => w + OpWork.Retraction(m.Rows, m.Columns)));
        var table = new MatrixSegment[matrices.Count];
        for (int i = 0; i < table.Length; i++)
        {
            var m = Cast(matrices[i]);
            table[i] = new MatrixSegment(m.Float, m.Rows, m.Columns);
        }
        using var segments = Stage<MatrixSegment>(table);
        optimizer.OrthonormalizeRows(segments.View, table.Length, step, degenerateFlag.View, Stream);
    }

    private static long Elements(IReadOnlyList<Tensor> tensors) => tensors.Sum(t => (long)t.Length);

    private TensorSegment[] Segments(IReadOnlyList<Tensor> tensors)
    {
        var table = new TensorSegment[tensors.Count];
        for (int i = 0; i < table.Length; i++)
        {
            table[i] = new TensorSegment(Cast(tensors[i]).Float);
        }
        return table;
    }
}
