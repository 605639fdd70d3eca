using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/swiglu.cu: out = silu(gate) * up and its backward, elementwise over bf16. Every
/// method queues one launch on the stream given and returns (no synchronization); lengths are checked first.
/// </summary>
public sealed class SwiGluKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "swiglu.cu";

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction backward;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public SwiGluKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("swiglu_forward");
        backward = module.GetFunction("swiglu_backward");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>output[i] = bf16(silu(gate[i]) * up[i]); output may be gate or up.</summary>
    public void Forward(DeviceView<BFloat16> gate, DeviceView<BFloat16> up, DeviceView<BFloat16> output, DeviceStream stream)
    {
        RequireSameLength(gate.Length, up.Length, "swiglu: gate and up");
        RequireSameLength(gate.Length, output.Length, "swiglu: gate and output");
        if (gate.IsEmpty)
        {
            return;
        }
        runtime.Launch(forward, LaunchConfig.ForBFloat16Packs(gate.Length), stream, output.Pointer, gate.Pointer, up.Pointer, gate.Length);
    }

    /// <summary>
    /// dUp = dOut * silu(gate), dGate = dOut * up * silu'(gate), both written (activation gradients); dGate may be
    /// gate and dUp may be up.
    /// </summary>
    public void Backward(DeviceView<BFloat16> gate, DeviceView<BFloat16> up, DeviceView<BFloat16> dOut,
        DeviceView<BFloat16> dGate, DeviceView<BFloat16> dUp, DeviceStream stream)
    {
        RequireSameLength(gate.Length, up.Length, "swiglu backward: gate and up");
        RequireSameLength(gate.Length, dOut.Length, "swiglu backward: gate and dOut");
        RequireSameLength(gate.Length, dGate.Length, "swiglu backward: gate and dGate");
        RequireSameLength(gate.Length, dUp.Length, "swiglu backward: gate and dUp");
        if (gate.IsEmpty)
        {
            return;
        }
        runtime.Launch(backward, LaunchConfig.ForBFloat16Packs(gate.Length), stream, dGate.Pointer, dUp.Pointer, dOut.Pointer, gate.Pointer, up.Pointer, gate.Length);
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    private static void RequireSameLength(long a, long b, string what)
    {
        if (a != b)
        {
            throw new ArgumentException($"{what} differ in length ({a} and {b})");
        }
    }
}
