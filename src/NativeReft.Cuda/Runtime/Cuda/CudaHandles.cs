using System.Runtime.InteropServices;
using static NativeReft.Cuda.Interop.CudaDriver;

namespace NativeReft.Cuda;

/// <summary>A retained primary context of one device; released (cuDevicePrimaryCtxRelease) when the last user is.</summary>
internal sealed class PrimaryContextHandle : SafeHandle
{
    private PrimaryContextHandle(int device)
        : base(0, ownsHandle: true)
    {
        Device = device;
    }

    public int Device { get; }

    public override bool IsInvalid => handle == 0;

    public static PrimaryContextHandle Retain(int device)
    {
        var context = new PrimaryContextHandle(device);
        Check(cuDevicePrimaryCtxRetain(out nint retained, device));
        context.SetHandle(retained);
        return context;
    }

    /// <summary>Makes the context current on the calling thread.</summary>
    public void MakeCurrent() => Check(cuCtxSetCurrent(handle));

    protected override bool ReleaseHandle() => cuDevicePrimaryCtxRelease(Device) == Interop.CuResult.Success;
}

/// <summary>
/// A driver object that lives in a context (stream, event, module, graph, pinned memory, cuBLAS handle). It holds
/// a reference on the context, so the context outlives it whatever order finalizers run in, and makes the context
/// current before destroying the object.
/// </summary>
internal abstract class ContextBoundHandle : SafeHandle
{
    private readonly PrimaryContextHandle context;
    private bool contextReferenced;

    protected ContextBoundHandle(PrimaryContextHandle context)
        : base(0, ownsHandle: true)
    {
        this.context = context;
        context.DangerousAddRef(ref contextReferenced);
    }

    public override bool IsInvalid => handle == 0;

    /// <summary>Stores the native handle once it was created (never called on failure, so nothing is released).</summary>
    public void Attach(nint created) => SetHandle(created);

    protected sealed override bool ReleaseHandle()
    {
        CudaRuntime.ForgetCurrentContext();
        bool released = cuCtxSetCurrent(context.DangerousGetHandle()) == Interop.CuResult.Success && Destroy(handle);
        if (contextReferenced)
        {
            context.DangerousRelease();
        }
        return released;
    }

    protected override void Dispose(bool disposing)
    {
        // A handle that never got a native object still holds its reference on the context.
        if (IsInvalid && contextReferenced && !IsClosed)
        {
            contextReferenced = false;
            context.DangerousRelease();
        }
        base.Dispose(disposing);
    }

    protected abstract bool Destroy(nint native);
}

internal sealed class StreamHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuStreamDestroy(native) == Interop.CuResult.Success;
}

internal sealed class EventHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuEventDestroy(native) == Interop.CuResult.Success;
}

internal sealed class ModuleHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuModuleUnload(native) == Interop.CuResult.Success;
}

internal sealed class GraphHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuGraphDestroy(native) == Interop.CuResult.Success;
}

internal sealed class GraphExecHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuGraphExecDestroy(native) == Interop.CuResult.Success;
}

internal sealed class PinnedMemoryHandle(PrimaryContextHandle context) : ContextBoundHandle(context)
{
    protected override bool Destroy(nint native) => cuMemFreeHost(native) == Interop.CuResult.Success;
}
