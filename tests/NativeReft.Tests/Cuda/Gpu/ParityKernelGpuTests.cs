using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Gpu;

/// <summary>Blas.LinearAdd on cuBLAS and cuBLASLt: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class LinearAddGpuTests : LinearAddSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/rmsnorm.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class RmsNormKernelGpuTests : RmsNormKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/swiglu.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class SwiGluKernelGpuTests : SwiGluKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/rope.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class RopeKernelGpuTests : RopeKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/embedding.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class EmbeddingKernelGpuTests : EmbeddingKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/attention.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class AttentionKernelGpuTests : AttentionKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/crossentropy.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class CrossEntropyKernelGpuTests : CrossEntropyKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/optimizer.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class OptimizerKernelGpuTests : OptimizerKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}

/// <summary>kernels/intervention.cu on the GPU: the suite the emulator runs.</summary>
[Category("Gpu")]
public sealed class InterventionKernelGpuTests : InterventionKernelSuite
{
    protected override IDeviceRuntime Device => Gpu.Runtime;
}
