using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// NVRTC for tests that compile kernels: without it they are skipped with the reason, except with CI=true,
/// where they fail: CI must compile every kernel (.ci/run installs Debian's NVRTC).
/// </summary>
internal static class CudaTestSupport
{
    public static void RequireNvrtc()
    {
        if (NvrtcCompiler.IsAvailable)
        {
            return;
        }
        string reason = $"NVRTC is not installed: {Interop.Libraries.InstallHint(CudaLibrary.Nvrtc)}";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail(reason + " (CI=true: the kernel compile tests must run; .ci/run installs NVRTC)");
        }
        Assert.Ignore(reason);
    }
}
