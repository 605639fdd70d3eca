using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        Forward(q, k, v, output, shape, keyMask, default);
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dQ, Tensor dK, Tensor dV,
        AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        using var op = Op(attention.ChoosesTensorCores(shape) ? "attention backward (tensor cores)" : "attention backward", OpWork.AttentionBackward(shape));
        using var mask = StageMask(keyMask, shape);
        using var scratch = new DeviceBuffer<float>(Runtime, AttentionKernels.BackwardScratchLength(shape));
        attention.Backward(Cast(q).BFloat16, Cast(k).BFloat16, Cast(v).BFloat16, mask.View, shape, Cast(dOut).BFloat16,
            Cast(dQ).BFloat16, Cast(dK).BFloat16, Cast(dV).BFloat16, scratch.View, Stream);
    }

    /// <inheritdoc />
    /// <remarks>
    /// Where the tensor-core kernels run, the forward writes each row's log-sum-exp into the returned f32 tensor
    /// (which is also the backward's scratch), so that the backward skips recomputing it.
    /// </remarks>
    public Tensor? AttentionForBackward(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        if (!attention.ChoosesTensorCores(shape))
        {
            Attention(q, k, v, output, shape, keyMask);
            return null;
        }
        long rows = (long)shape.Batch * shape.QueryLength * shape.Heads;
        var saved = Allocate(DType.F32, [checked((int)AttentionKernels.BackwardScratchLength(shape))], zero: false);
        Forward(q, k, v, output, shape, keyMask, saved.Float.Slice(0, rows));
        return saved;
    }

    // The forward, writing each row's log-sum-exp to logSumExp unless it is empty.
    private void Forward(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask,
        DeviceView<float> logSumExp)
    {
        using var op = Op(attention.ChoosesTensorCores(shape) ? "attention (tensor cores)" : "attention", OpWork.Attention(shape, !logSumExp.IsEmpty));
        using var mask = StageMask(keyMask, shape);
        attention.Forward(Cast(q).BFloat16, Cast(k).BFloat16, Cast(v).BFloat16, mask.View, shape, Cast(output).BFloat16, logSumExp, Stream);
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor output, Tensor? saved, Tensor dOut, Tensor dQ, Tensor dK,
        Tensor dV, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        if (saved is null)
        {
            AttentionBackward(q, k, v, dOut, dQ, dK, dV, shape, keyMask);
            return;
        }
        using var op = Op("attention backward (tensor cores)", OpWork.AttentionBackward(shape));
        using var mask = StageMask(keyMask, shape);
        attention.BackwardFromSaved(Cast(q).BFloat16, Cast(k).BFloat16, Cast(v).BFloat16, mask.View, shape, Cast(output).BFloat16,
            Cast(dOut).BFloat16, Cast(dQ).BFloat16, Cast(dK).BFloat16, Cast(dV).BFloat16, Cast(saved).Float, Stream);
    }

    // bool is one byte in .NET but not guaranteed 0/1 across interop: copy as bytes explicitly.
    private DeviceBuffer<byte> StageMask(ReadOnlySpan<bool> keyMask, AttentionShape shape)
    {
        if (!keyMask.IsEmpty && keyMask.Length != shape.Batch * shape.KeyStride)
        {
            throw new ArgumentException($"attention: key mask has {keyMask.Length} entries, expected {shape.Batch * shape.KeyStride}");
        }
        var bytes = new byte[keyMask.Length];
        for (int i = 0; i < bytes.Length; i++)
        {
            bytes[i] = keyMask[i] ? (byte)1 : (byte)0;
        }
        return Stage<byte>(bytes);
    }
}
