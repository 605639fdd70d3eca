using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/rope.cu: rotary position embedding in place on bf16 rows of heads * headSize, HF's
/// rotate_half layout, with f32 cos/sin tables (maxPositions, headSize / 2) and int32 positions, one per row.
/// Every method queues one launch on the stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class RopeKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "rope.cu";

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction backward;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public RopeKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("rope_forward");
        backward = module.GetFunction("rope_backward");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>
    /// Rotates each (x[i], x[i + headSize/2]) pair of every head of row r by the angle of positions[r], in place.
    /// x (rows, heads * headSize); cos, sin (maxPositions, headSize / 2); positions (rows). A position outside the
    /// table leaves its row unchanged and sets error[0] = 1 (error may be empty: no report).
    /// </summary>
    public void Forward(DeviceView<BFloat16> x, DeviceView<float> cos, DeviceView<float> sin, DeviceView<int> positions,
        int heads, int headSize, DeviceView<int> error, DeviceStream stream) =>
        Launch(forward, x, cos, sin, positions, heads, headSize, error, stream);

    /// <summary>
    /// The backward of <see cref="Forward"/>: rotates dX (the upstream gradient, in place) by the negative angle,
    /// the rotation's transpose and inverse. Same shapes and error contract as <see cref="Forward"/>.
    /// </summary>
    public void Backward(DeviceView<BFloat16> dX, DeviceView<float> cos, DeviceView<float> sin, DeviceView<int> positions,
        int heads, int headSize, DeviceView<int> error, DeviceStream stream) =>
        Launch(backward, dX, cos, sin, positions, heads, headSize, error, stream);

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    private void Launch(KernelFunction function, DeviceView<BFloat16> x, DeviceView<float> cos, DeviceView<float> sin,
        DeviceView<int> positions, int heads, int headSize, DeviceView<int> error, DeviceStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(heads);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(headSize);
        if (headSize % 2 != 0)
        {
            throw new ArgumentException($"rope: head size {headSize} is odd");
        }
        int half = headSize / 2;
        long rows = positions.Length;
        if (x.Length != rows * heads * headSize)
        {
            throw new ArgumentException($"rope: x has {x.Length} elements, expected {rows} positions x {heads} heads x {headSize}");
        }
        if (cos.Length != sin.Length || cos.Length % half != 0)
        {
            throw new ArgumentException($"rope: tables of {cos.Length} and {sin.Length} elements do not hold rows of {half}");
        }
        if (!error.IsEmpty && error.Length != 1)
        {
            throw new ArgumentException($"rope: the error flag is one int, not {error.Length}");
        }
        if (rows == 0)
        {
            return;
        }
        int maxPositions = checked((int)(cos.Length / half));
        runtime.Launch(function, LaunchConfig.ForBFloat16Packs(rows * heads * half), stream, x.Pointer, cos.Pointer, sin.Pointer,
            positions.Pointer, error.Pointer, checked((int)rows), heads, headSize, maxPositions);
    }
}
