using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

/// <summary>
/// Page-locked host memory that a captured graph's host-to-device copies read at every replay: each copy gets its
/// own slot, filled once, when the graph is captured (a copy from pageable memory cannot be captured, and the
/// caller's span is gone by the time the graph runs). Sized up front: a capture cannot allocate.
/// </summary>
internal sealed unsafe class PinnedStaging : IDisposable
{
    private const long Alignment = 256;
    private readonly IDeviceRuntime runtime;
    private readonly PinnedHostBuffer<byte> memory;
    private long used;

    public PinnedStaging(IDeviceRuntime runtime, long bytes)
    {
        this.runtime = runtime;
        memory = runtime.AllocatePinned<byte>(Math.Max(Alignment, bytes));
    }

    /// <summary>The bytes a copy of <paramref name="bytes"/> takes here: slots start 256-byte aligned.</summary>
    public static long SlotBytes(long bytes) => (bytes + Alignment - 1) / Alignment * Alignment;

    /// <summary>Fills the next slot with <paramref name="values"/> and queues its copy to <paramref name="destination"/>.</summary>
    public void CopyToDevice<T>(ReadOnlySpan<T> values, DeviceView<T> destination, DeviceStream stream)
        where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        if (used + SlotBytes(bytes.Length) > memory.Length)
        {
            throw new InvalidOperationException(
                $"the captured step copies more host data ({used + SlotBytes(bytes.Length)} bytes so far) than the run before it did ({memory.Length}): capture the same step that ran last");
        }
        byte* slot = (byte*)memory.Pointer + used;
        bytes.CopyTo(new Span<byte>(slot, bytes.Length));
        runtime.CopyHostToDevice(destination.Pointer, slot, bytes.Length, stream);
        used += SlotBytes(bytes.Length);
    }

    public void Dispose() => memory.Dispose();
}
