using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda.Gpu;

/// <summary>The backend op suite on the CUDA backend on a GPU.</summary>
[Category("Gpu")]
public sealed class CudaBackendGpuOpsTests : BackendOpsSuite
{
    private protected override IBackend CreateBackend() => new CudaBackend(Gpu.Runtime);

    private protected override Tolerance ToleranceFor(int terms) => CudaBackendTolerance.For(terms);
}

/// <summary>The CUDA backend on a GPU against the CPU backend on stories260K.</summary>
[Category("Gpu")]
public sealed class CudaBackendGpuTrainingTests : CudaBackendTrainingSuite
{
    private protected override IDeviceRuntime Device => Gpu.Runtime;
}
