using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <summary>The loss per row comes back to the host (one f32 per labelled row) and is summed there in double.</summary>
    public double CrossEntropy(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale)
    {
        ArgumentNullException.ThrowIfNull(logits);
        using var op = Op("cross-entropy", OpWork.CrossEntropy(logits.Rows, logits.Columns));
        using var losses = CrossEntropyRows(logits, targets, dLogits, gradScale);
        var perRow = new float[losses.Length];
        Runtime.CopyToHost(losses.View, perRow);
        ThrowIfKernelReportedError();
        double sum = 0;
        foreach (float l in perRow)
        {
            sum += l;
        }
        return sum;
    }

    // The fused forward and backward, its per-row losses left on the device.
    private DeviceBuffer<float> CrossEntropyRows(Tensor logits, ReadOnlySpan<int> targets, Tensor dLogits, double gradScale)
    {
        var (z, dz) = (Cast(logits), Cast(dLogits));
        RequireSameShape(z, dz, "cross-entropy");
        if (targets.Length != z.Rows)
        {
            throw new ArgumentException($"cross-entropy: {targets.Length} targets for {z.Rows} rows");
        }
        foreach (int t in targets)
        {
            if (t >= z.Columns)
            {
                throw new ArgumentOutOfRangeException(nameof(targets), t, $"cross-entropy: target {t} outside the vocabulary of {z.Columns}");
            }
        }
        using var ids = Stage(targets);
        var losses = new DeviceBuffer<float>(Runtime, z.Rows);
        crossEntropy.ForwardBackward(z.BFloat16, ids.View, z.Rows, z.Columns, (float)gradScale, dz.BFloat16, losses.View, errorFlag.View, Stream);
        return losses;
    }
}
