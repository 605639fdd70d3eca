namespace NativeReft.Cuda;

/// <summary>
/// A native object of a device runtime (stream, event, graph, module): disposable, with the standard pattern in
/// one place. The CUDA implementations hold SafeHandles, so an object that is never disposed is still released.
/// </summary>
public abstract class DeviceObject : IDisposable
{
    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the native object.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>An ordered queue of device work (a CUDA stream).</summary>
public abstract class DeviceStream : DeviceObject
{
    /// <summary>Waits until all work queued on this stream has finished.</summary>
    public abstract void Synchronize();
}

/// <summary>A marker recorded on a stream, for timing the work between two of them.</summary>
public abstract class TimingEvent : DeviceObject
{
    /// <summary>Records the event on <paramref name="stream"/> (after the work queued so far).</summary>
    public abstract void Record(DeviceStream stream);

    /// <summary>Waits until the event has happened.</summary>
    public abstract void Synchronize();

    /// <summary>Milliseconds from <paramref name="start"/> to this event; both must have happened.</summary>
    public abstract float ElapsedMillisecondsSince(TimingEvent start);
}

/// <summary>Captured device work, replayed with one launch (an instantiated CUDA graph).</summary>
public abstract class DeviceGraph : DeviceObject
{
    /// <summary>Replays the captured work on <paramref name="stream"/>.</summary>
    public abstract void Launch(DeviceStream stream);

    /// <summary>The work items captured: kernel launches, copies and fills (a GEMM may be several on a GPU).</summary>
    public abstract int Nodes { get; }
}

/// <summary>The compiled kernels of one kernels/*.cu file, loaded on a device.</summary>
public abstract class KernelModule : DeviceObject
{
    /// <summary>Creates the module for <paramref name="image"/>.</summary>
    protected KernelModule(CompiledKernel image)
    {
        Image = image;
    }

    /// <summary>The compiled image (with its compile log and ptxas resource report).</summary>
    public CompiledKernel Image { get; }

    /// <summary>The kernels/*.cu file it came from.</summary>
    public string FileName => Image.FileName;

    private readonly Dictionary<string, KernelFunction> functions = new(StringComparer.Ordinal);

    /// <summary>The <c>extern "C" __global__</c> function <paramref name="name"/> (looked up once, then remembered).</summary>
    public KernelFunction GetFunction(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        lock (functions)
        {
            if (!functions.TryGetValue(name, out var function))
            {
                functions[name] = function = new KernelFunction(this, name, FindFunction(name));
            }
            return function;
        }
    }

    /// <summary>The runtime's handle for the kernel <paramref name="name"/>; throws when the module has none.</summary>
    protected abstract nint FindFunction(string name);
}

/// <summary>One kernel of a loaded <see cref="KernelModule"/>; valid while the module is.</summary>
public sealed class KernelFunction
{
    internal KernelFunction(KernelModule module, string name, nint handle)
    {
        Module = module;
        Name = name;
        Handle = handle;
    }

    /// <summary>The module that owns it.</summary>
    public KernelModule Module { get; }

    /// <summary>The kernel's name, e.g. "fill_forward".</summary>
    public string Name { get; }

    /// <summary>The runtime's handle (a CUfunction on a GPU).</summary>
    internal nint Handle { get; }

    /// <summary>The dynamic shared memory every device lets a block use without opting in.</summary>
    internal const int DefaultDynamicSharedBytes = 48 * 1024;

    /// <summary>The dynamic shared memory a launch of this function may ask for without raising its attribute.</summary>
    internal int DynamicSharedBytesAllowed { get; set; } = DefaultDynamicSharedBytes;

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Module.FileName})";
}
