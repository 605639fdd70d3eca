using System.Runtime.CompilerServices;
using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// A tensor in device memory owned by a <see cref="CudaBackend"/>: bf16 for weights and activations, f32 for what
/// must stay exact (intervention parameters, their gradients and moments, RoPE tables, dropout scales).
/// </summary>
public sealed class CudaTensor : Tensor
{
    private readonly DeviceBuffer<byte> storage;

    internal CudaTensor(CudaBackend backend, DType type, ReadOnlySpan<int> shape)
        : base(shape)
    {
        if (type is not (DType.BF16 or DType.F32))
        {
            throw new ArgumentException($"device tensors are bf16 or f32, not {type}", nameof(type));
        }
        Backend = backend;
        DType = type;
        storage = new DeviceBuffer<byte>(backend.Runtime, Length * DTypes.SizeOf(type));
    }

    /// <inheritdoc />
    public override IBackend Backend { get; }

    /// <summary>The element type in device memory.</summary>
    public DType DType { get; }

    /// <summary>The elements as bf16 (throws when the tensor is f32).</summary>
    public DeviceView<BFloat16> BFloat16 => Typed<BFloat16>(DType.BF16);

    /// <summary>The elements as f32 (throws when the tensor is bf16).</summary>
    public DeviceView<float> Float => Typed<float>(DType.F32);

    /// <summary>The raw bytes.</summary>
    public DeviceView<byte> Bytes => storage.View;

    /// <inheritdoc />
    public override string ToString() => $"Tensor{ShapeText} {DType} on {Backend.Name}";

    /// <inheritdoc />
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            storage.Dispose();
        }
    }

    private DeviceView<T> Typed<T>(DType expected)
        where T : unmanaged
    {
        if (DType != expected)
        {
            throw new ArgumentException($"{this} is {DType}; this op needs {expected}");
        }
        return new DeviceView<T>(storage.Pointer, Length);
    }

    internal static int SizeOf<T>() => Unsafe.SizeOf<T>();
}
