using NativeReft.Cuda;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// The CPU kernel emulator for tests: one runtime, with the emulator's test kernels
/// (libnativereft_emu_testkernels.so) loaded. Without the library (no cmake or g++ at build time) the tests are
/// skipped with the reason, except with CI=true, where they fail: CI must run the kernels.
/// </summary>
internal static class Emulated
{
    public const string TestKernels = "emulator_tests.cu";

    private static readonly object Gate = new();
    private static EmulatorRuntime? runtime;
    private static EmulatorRuntime? checkedRuntime;

    public static EmulatorRuntime Runtime
    {
        get
        {
            lock (Gate)
            {
                return runtime ??= Open(check: false);
            }
        }
    }

    /// <summary>
    /// A shared runtime in check mode: every buffer between guard pages, so a kernel that reads or writes past a
    /// tensor fails with the kernel, block, thread and buffer. The parity suites run on it as well.
    /// </summary>
    public static EmulatorRuntime CheckedRuntime
    {
        get
        {
            lock (Gate)
            {
                return checkedRuntime ??= Open(check: true);
            }
        }
    }

    /// <summary>A separate runtime in check mode (guarded allocations); the caller disposes it.</summary>
    public static EmulatorRuntime OpenChecked() => Open(check: true);

    /// <summary>A separate runtime, with a memory pool of its own (nothing cached yet); the caller disposes it.</summary>
    public static EmulatorRuntime OpenSeparate() => Open(check: false);

    private static EmulatorRuntime Open(bool check)
    {
        if (!EmulatorRuntime.IsAvailable)
        {
            string reason = $"kernel emulator not built: {EmulatorRuntime.Problem}";
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            {
                Assert.Fail(reason + " (CI=true: the emulator tests must run)");
            }
            Assert.Ignore(reason);
        }
        EmulatorRuntime.LoadKernelLibrary(Path.Combine(AppContext.BaseDirectory, "libnativereft_emu_testkernels.so"));
        return EmulatorRuntime.Create(check);
    }

    public static float[] RandomFloats(int seed, int count)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}

/// <summary>kernels/elementwise.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class ElementwiseKernelEmulatorTests : Cuda.ElementwiseKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>Blas.LinearAdd on the emulator's GEMM: the same suite the GPU runs.</summary>
public sealed class LinearAddEmulatorTests : Cuda.LinearAddSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/rmsnorm.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class RmsNormKernelEmulatorTests : Cuda.RmsNormKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/swiglu.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class SwiGluKernelEmulatorTests : Cuda.SwiGluKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/rope.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class RopeKernelEmulatorTests : Cuda.RopeKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/embedding.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class EmbeddingKernelEmulatorTests : Cuda.EmbeddingKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/attention.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class AttentionKernelEmulatorTests : Cuda.AttentionKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/intervention.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class InterventionKernelEmulatorTests : Cuda.InterventionKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/rmsnorm.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class RmsNormKernelCheckedEmulatorTests : Cuda.RmsNormKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/swiglu.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class SwiGluKernelCheckedEmulatorTests : Cuda.SwiGluKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/rope.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class RopeKernelCheckedEmulatorTests : Cuda.RopeKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/embedding.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class EmbeddingKernelCheckedEmulatorTests : Cuda.EmbeddingKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/attention.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class AttentionKernelCheckedEmulatorTests : Cuda.AttentionKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/crossentropy.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class CrossEntropyKernelEmulatorTests : Cuda.CrossEntropyKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/crossentropy.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class CrossEntropyKernelCheckedEmulatorTests : Cuda.CrossEntropyKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/optimizer.cu on the emulator: the same suite the GPU runs.</summary>
public sealed class OptimizerKernelEmulatorTests : Cuda.OptimizerKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.Runtime;
}

/// <summary>kernels/optimizer.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class OptimizerKernelCheckedEmulatorTests : Cuda.OptimizerKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}

/// <summary>kernels/intervention.cu on the emulator in check mode: the same suite, with every buffer between guard pages.</summary>
public sealed class InterventionKernelCheckedEmulatorTests : Cuda.InterventionKernelSuite
{
    protected override IDeviceRuntime Device => Emulated.CheckedRuntime;
}
