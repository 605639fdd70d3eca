using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Gpu;

/// <summary>
/// The GPU the [Category("Gpu")] tests share (one context for all of them). Without a driver or a usable GPU,
/// every GPU test is skipped with the reason, on CI too: CI has no GPU; these tests run where one is, from the
/// bundle that scripts/gpu-bundle.sh builds (scripts/gpu-run.sh).
/// </summary>
internal static class Gpu
{
    private static readonly object Gate = new();
    private static CudaRuntime? runtime;
    private static string? unavailable;

    /// <summary>The shared runtime on device 0, or Assert.Ignore with the reason there is none.</summary>
    public static CudaRuntime Runtime
    {
        get
        {
            lock (Gate)
            {
                if (runtime is null && unavailable is null)
                {
                    Open();
                }
                if (runtime is null)
                {
                    Assert.Ignore(unavailable ?? "no GPU");
                }
                return runtime!;
            }
        }
    }

    public static void Close()
    {
        lock (Gate)
        {
            runtime?.Dispose();
            runtime = null;
        }
    }

    private static void Open()
    {
        if (!CudaRuntime.IsDriverAvailable)
        {
            unavailable = "no CUDA driver (libcuda.so.1 not found): GPU tests need an NVIDIA GPU; run them with scripts/gpu-run.sh tests";
            return;
        }
        try
        {
            runtime = CudaRuntime.Create(0);
            TestContext.Progress.WriteLine($"GPU tests on {runtime.Name}, {runtime.Properties.Multiprocessors} SMs");
        }
        catch (CudaException e)
        {
            unavailable = $"no usable GPU: {e.ErrorName} ({e.ErrorText})";
        }
        catch (ArgumentOutOfRangeException e)
        {
            unavailable = $"no usable GPU: {e.Message}";
        }
    }

    /// <summary>Seeded values in [-1, 1).</summary>
    public static float[] RandomFloats(int seed, int count)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}

/// <summary>Releases the shared GPU context after the last GPU test.</summary>
[SetUpFixture]
public sealed class GpuSetUp
{
    [OneTimeTearDown]
    public void CloseRuntime() => Gpu.Close();
}
