using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Attention(Tensor q, Tensor k, Tensor v, Tensor output, AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        using var op = Op(attention.ChoosesTensorCores(shape) ? "attention (tensor cores)" : "attention");
        using var mask = StageMask(keyMask, shape);
        attention.Forward(Cast(q).BFloat16, Cast(k).BFloat16, Cast(v).BFloat16, mask.View, shape, Cast(output).BFloat16, Stream);
    }

    /// <inheritdoc />
    public void AttentionBackward(Tensor q, Tensor k, Tensor v, Tensor dOut, Tensor dQ, Tensor dK, Tensor dV,
        AttentionShape shape, ReadOnlySpan<bool> keyMask)
    {
        using var op = Op(attention.ChoosesTensorCores(shape) ? "attention backward (tensor cores)" : "attention backward");
        using var mask = StageMask(keyMask, shape);
        using var scratch = new DeviceBuffer<float>(Runtime, AttentionKernels.BackwardScratchLength(shape));
        attention.Backward(Cast(q).BFloat16, Cast(k).BFloat16, Cast(v).BFloat16, mask.View, shape, Cast(dOut).BFloat16,
            Cast(dQ).BFloat16, Cast(dK).BFloat16, Cast(dV).BFloat16, scratch.View, Stream);
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
