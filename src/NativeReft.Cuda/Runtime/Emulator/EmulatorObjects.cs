using System.Diagnostics;
using System.Runtime.InteropServices;
using static NativeReft.Cuda.Interop.Emulator;

namespace NativeReft.Cuda;

/// <summary>An emulated stream: work runs when it is issued, so there is never anything to wait for.</summary>
internal sealed class EmulatorStream(EmulatorRuntime runtime, string name) : DeviceStream
{
    public EmulatorRuntime Runtime { get; } = runtime;

    /// <summary>While a graph is being captured on this stream: the steps recorded so far.</summary>
    public List<Action<DeviceStream>>? Recording { get; set; }

    public override void Synchronize() => Runtime.CountHostWait();

    public override string ToString() => $"emulated {name}";
}

/// <summary>An event that takes the time when it is recorded (the stream's work before it has already run).</summary>
internal sealed class EmulatorEvent(EmulatorRuntime runtime) : TimingEvent
{
    private long timestamp = -1;

    public override void Record(DeviceStream stream)
    {
        var emulated = runtime.RequireStream(stream);
        if (emulated.Recording is { } recording)
        {
            recording.Add(_ => timestamp = Stopwatch.GetTimestamp());
            return;
        }
        timestamp = Stopwatch.GetTimestamp();
    }

    public override void Synchronize() => runtime.CountHostWait();

    public override float ElapsedMillisecondsSince(TimingEvent start)
    {
        if (start is not EmulatorEvent begin)
        {
            throw new ArgumentException("both events must come from the same emulator runtime", nameof(start));
        }
        if (timestamp < 0 || begin.timestamp < 0)
        {
            throw new InvalidOperationException("both events must have been recorded");
        }
        return (float)Stopwatch.GetElapsedTime(begin.timestamp, timestamp).TotalMilliseconds;
    }
}

/// <summary>Recorded work, replayed step by step on the stream it is launched on.</summary>
internal sealed class EmulatorGraph(EmulatorRuntime runtime, List<Action<DeviceStream>> steps) : DeviceGraph
{
    private bool disposed;

    public override void Launch(DeviceStream stream)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        runtime.RequireStream(stream);
        foreach (var step in steps)
        {
            step(stream);
        }
    }

    public override int Nodes => steps.Count;

    protected override void Dispose(bool disposing) => disposed = true;
}

/// <summary>The kernels the emulator library registered for one kernel file.</summary>
internal sealed unsafe class EmulatorModule(CompiledKernel image) : KernelModule(image)
{
    /// <summary>
    /// The thread limits its kernels declare with <c>__launch_bounds__</c>, read once from the embedded source: the
    /// kernels/*.cu built into the emulator have one; a test kernel library's file has none, so no bounds.
    /// </summary>
    public IReadOnlyDictionary<string, int> LaunchBounds { get; } =
        KernelSources.All.FirstOrDefault(s => s.FileName == image.FileName)?.LaunchBounds ?? new Dictionary<string, int>();

    protected override nint FindFunction(string name)
    {
        nint kernel = emu_find_kernel(name);
        if (kernel == 0 || Marshal.PtrToStringUTF8((nint)emu_kernel_file(kernel)) != FileName)
        {
            throw new ArgumentException($"the emulator has no kernel {name} in {FileName}", nameof(name));
        }
        return kernel;
    }
}

/// <summary>A launch recorded into a graph: the argument values are copied, as cuStreamBeginCapture does.</summary>
internal sealed unsafe class LaunchRecord
{
    private readonly KernelFunction function;
    private readonly LaunchConfig config;
    private readonly byte[] values;
    private readonly int[] offsets;

    private LaunchRecord(KernelFunction function, LaunchConfig config, byte[] values, int[] offsets)
    {
        this.function = function;
        this.config = config;
        this.values = values;
        this.offsets = offsets;
    }

    public static Action<DeviceStream> Capture(EmulatorRuntime runtime, KernelFunction function, in LaunchConfig config, void** arguments)
    {
        int count = emu_kernel_parameters(function.Handle, null, 0);
        var sizes = new int[count];
        fixed (int* s = sizes)
        {
            emu_kernel_parameters(function.Handle, s, count);
        }
        var offsets = new int[count];
        int total = 0;
        for (int i = 0; i < count; i++)
        {
            offsets[i] = total;
            total += (sizes[i] + 7) / 8 * 8;
        }
        var values = new byte[Math.Max(total, 1)];
        fixed (byte* v = values)
        {
            for (int i = 0; i < count; i++)
            {
                Buffer.MemoryCopy(arguments[i], v + offsets[i], sizes[i], sizes[i]);
            }
        }
        var record = new LaunchRecord(function, config, values, offsets);
        return stream => record.Replay(runtime, stream);
    }

    private void Replay(EmulatorRuntime runtime, DeviceStream stream)
    {
        void** arguments = stackalloc void*[Math.Max(offsets.Length, 1)];
        fixed (byte* v = values)
        {
            for (int i = 0; i < offsets.Length; i++)
            {
                arguments[i] = v + offsets[i];
            }
            runtime.Launch(function, config, stream, arguments);
        }
    }
}

/// <summary>Host memory from NativeMemory.AlignedAlloc (the emulator's "pinned" memory).</summary>
internal sealed unsafe class HostMemoryHandle : SafeHandle
{
    private readonly Action? released;

    public HostMemoryHandle(nint pointer, Action? released = null)
        : base(0, ownsHandle: true)
    {
        SetHandle(pointer);
        this.released = released;
    }

    public override bool IsInvalid => handle == 0;

    protected override bool ReleaseHandle()
    {
        released?.Invoke();
        NativeMemory.AlignedFree((void*)handle);
        return true;
    }
}
