using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Tests.Backends;
using NativeReft.Tests.Cuda;

namespace NativeReft.Tests.Emulator;

/// <summary>The backend op suite on the CUDA backend under the emulator: the same checks the CPU backends pass.</summary>
public sealed class CudaBackendEmulatorOpsTests : BackendOpsSuite
{
    private protected override IBackend CreateBackend() => new CudaBackend(Emulated.Runtime);

    private protected override Tolerance ToleranceFor(int terms) => CudaBackendTolerance.For(terms);
}

/// <summary>The CUDA backend on the emulator against the CPU backend on stories260K.</summary>
public sealed class CudaBackendEmulatorTrainingTests : CudaBackendTrainingSuite
{
    private protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>The same on the emulator in check mode: every buffer between guard pages, so a stray index in any op fails.</summary>
public sealed class CudaBackendCheckedEmulatorTrainingTests : CudaBackendTrainingSuite
{
    private protected override IDeviceRuntime Device => Emulated.CheckedRuntime;

    private protected override int CurveSteps => 2;
}
