using static NativeReft.Cuda.Interop.CudaDriver;

namespace NativeReft.Cuda;

/// <summary>A CUDA stream; the default stream has no handle and is never destroyed.</summary>
internal sealed class CudaStream : DeviceStream
{
    private readonly StreamHandle? handle;

    public CudaStream(CudaRuntime runtime, StreamHandle? handle)
    {
        Runtime = runtime;
        this.handle = handle;
    }

    public CudaRuntime Runtime { get; }

    /// <summary>The CUstream (0 for the default stream).</summary>
    public nint Native
    {
        get
        {
            if (handle is null)
            {
                return 0;
            }
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return handle.DangerousGetHandle();
        }
    }

    public override void Synchronize()
    {
        Runtime.MakeCurrent();
        Check(cuStreamSynchronize(Native));
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            handle?.Dispose();
        }
    }

    public override string ToString() => handle is null ? "default stream" : $"stream 0x{Native:x}";
}

/// <summary>A CUDA event with timing enabled.</summary>
internal sealed class CudaEvent(CudaRuntime runtime, EventHandle handle) : TimingEvent
{
    private nint Native
    {
        get
        {
            ObjectDisposedException.ThrowIf(handle.IsClosed, this);
            return handle.DangerousGetHandle();
        }
    }

    public override void Record(DeviceStream stream)
    {
        runtime.MakeCurrent();
        Check(cuEventRecord(Native, runtime.StreamOf(stream)));
    }

    public override void Synchronize()
    {
        runtime.MakeCurrent();
        Check(cuEventSynchronize(Native));
    }

    public override float ElapsedMillisecondsSince(TimingEvent start)
    {
        if (start is not CudaEvent begin)
        {
            throw new ArgumentException("both events must come from the same CUDA runtime", nameof(start));
        }
        runtime.MakeCurrent();
        Check(cuEventElapsedTime(out float milliseconds, begin.Native, Native));
        return milliseconds;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            handle.Dispose();
        }
    }
}

/// <summary>A captured CUDA graph and its executable instance.</summary>
internal sealed class CudaGraph(CudaRuntime runtime, GraphHandle graph, GraphExecHandle exec) : DeviceGraph
{
    public override void Launch(DeviceStream stream)
    {
        ObjectDisposedException.ThrowIf(exec.IsClosed, this);
        runtime.MakeCurrent();
        Check(cuGraphLaunch(exec.DangerousGetHandle(), runtime.StreamOf(stream)));
    }

    public override int Nodes
    {
        get
        {
            ObjectDisposedException.ThrowIf(graph.IsClosed, this);
            runtime.MakeCurrent();
            Check(cuGraphGetNodes(graph.DangerousGetHandle(), 0, out nuint count));
            return checked((int)count);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            exec.Dispose();
            graph.Dispose();
        }
    }
}

/// <summary>A loaded CUBIN/PTX module; functions are looked up once and remembered.</summary>
internal sealed class CudaModule(CudaRuntime runtime, CompiledKernel image, ModuleHandle handle) : KernelModule(image)
{
    protected override nint FindFunction(string name)
    {
        ObjectDisposedException.ThrowIf(handle.IsClosed, this);
        runtime.MakeCurrent();
        var status = cuModuleGetFunction(out nint function, handle.DangerousGetHandle(), name);
        if (status != Interop.CuResult.Success)
        {
            throw Error(status, $"cuModuleGetFunction({FileName}, \"{name}\")");
        }
        return function;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            handle.Dispose();
        }
    }
}
