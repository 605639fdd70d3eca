namespace NativeReft.Cuda;

/// <summary>An ordered queue of device work (a CUDA stream).</summary>
public abstract class DeviceStream : IDisposable
{
    /// <summary>Waits until all work queued on this stream has finished.</summary>
    public abstract void Synchronize();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the native stream.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>A marker recorded on a stream, for timing the work between two of them.</summary>
public abstract class TimingEvent : IDisposable
{
    /// <summary>Records the event on <paramref name="stream"/> (after the work queued so far).</summary>
    public abstract void Record(DeviceStream stream);

    /// <summary>Waits until the event has happened.</summary>
    public abstract void Synchronize();

    /// <summary>Milliseconds from <paramref name="start"/> to this event; both must have happened.</summary>
    public abstract float ElapsedMillisecondsSince(TimingEvent start);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the native event.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>Captured device work, replayed with one launch (an instantiated CUDA graph).</summary>
public abstract class DeviceGraph : IDisposable
{
    /// <summary>Replays the captured work on <paramref name="stream"/>.</summary>
    public abstract void Launch(DeviceStream stream);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases the native graph.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}

/// <summary>The compiled kernels of one kernels/*.cu file, loaded on a device.</summary>
public abstract class KernelModule : IDisposable
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

    /// <summary>The <c>extern "C" __global__</c> function <paramref name="name"/>.</summary>
    public abstract KernelFunction GetFunction(string name);

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Unloads the module.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
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

    /// <inheritdoc />
    public override string ToString() => $"{Name} ({Module.FileName})";
}
