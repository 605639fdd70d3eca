using NativeReft.Backends;
using NativeReft.Backends.Cpu;

namespace NativeReft.Cuda;

/// <summary>Where the engine computes: what <c>--device</c> names.</summary>
public enum ComputeDevice
{
    /// <summary>A GPU when one is usable, else the CPU.</summary>
    Auto,
    /// <summary>The first CUDA GPU (bf16 kernels, cuBLAS).</summary>
    Cuda,
    /// <summary>The same CUDA backend on the CPU kernel emulator: slow, for checking the GPU code path without a GPU.</summary>
    Emu,
    /// <summary>The plain C# backend (f32): the numerical reference.</summary>
    Cpu,
}

/// <summary>Opens a backend for a <see cref="ComputeDevice"/>.</summary>
public static class ComputeDevices
{
    /// <summary>The names <c>--device</c> accepts.</summary>
    public const string Names = "cuda|emu|cpu";

    /// <summary>Parses "cuda", "emu", "cpu" or "auto" (any case).</summary>
    public static ComputeDevice Parse(string text) => text?.Trim().ToLowerInvariant() switch
    {
        "auto" or "" or null => ComputeDevice.Auto,
        "cuda" or "gpu" => ComputeDevice.Cuda,
        "emu" or "emulator" => ComputeDevice.Emu,
        "cpu" => ComputeDevice.Cpu,
        _ => throw new InputException($"unknown device '{text}': use one of {Names}"),
    };

    /// <summary>Whether a CUDA GPU is usable (driver present, at least one device); otherwise why not.</summary>
    public static bool GpuAvailable(out string? problem)
    {
        if (!CudaRuntime.IsDriverAvailable)
        {
            problem = "no CUDA driver (libcuda.so.1 not found)";
            return false;
        }
        try
        {
            var (_, devices) = CudaRuntime.QueryDevices();
            problem = devices.Count == 0 ? "the CUDA driver reports no device" : null;
            return devices.Count > 0;
        }
        catch (CudaException e)
        {
            problem = $"the CUDA driver fails: {e.Message}";
            return false;
        }
    }

    /// <summary>
    /// The backend for <paramref name="device"/>: <see cref="ComputeDevice.Auto"/> picks the GPU when one is
    /// usable, else the CPU with <paramref name="threads"/> threads (0: all cores).
    /// </summary>
    public static IBackend Open(ComputeDevice device, int threads = 0)
    {
        if (device == ComputeDevice.Auto)
        {
            device = GpuAvailable(out _) ? ComputeDevice.Cuda : ComputeDevice.Cpu;
        }
        switch (device)
        {
            case ComputeDevice.Cpu:
                return new CpuBackend<float>(threads);
            case ComputeDevice.Emu:
                if (!EmulatorRuntime.IsAvailable)
                {
                    throw new InputException($"--device emu: {EmulatorRuntime.Problem}");
                }
                return CudaBackend.OpenEmulator();
            default:
                if (!GpuAvailable(out string? problem))
                {
                    throw new InputException($"--device cuda: {problem}. Use --device cpu (or emu to run the CUDA kernels on the CPU emulator); `nativereft doctor` shows what is installed.");
                }
                try
                {
                    return CudaBackend.OpenGpu();
                }
                catch (DllNotFoundException e)
                {
                    throw new InputException($"--device cuda: {e.Message}. `nativereft doctor` shows what is installed.", e);
                }
        }
    }
}
