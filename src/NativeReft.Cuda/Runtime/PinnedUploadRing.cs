using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

/// <summary>
/// Host-to-device copies queued on one stream from page-locked memory, so that queuing them never makes the host
/// wait: from pageable memory CUDA may synchronize with the stream to stage a copy (its API synchronization notes),
/// which would drain the queue in the middle of a step. The values are copied into the ring at once (the caller's
/// span may change as soon as the call returns) and the device copies them from there in stream order.
/// </summary>
/// <remarks>
/// The ring is split into <see cref="Chunks"/> chunks filled in turn. Leaving a chunk records an event behind its
/// last copy, and a chunk is refilled only after that event has happened, so the host waits only when it runs a
/// whole ring of uploads ahead of the device. A copy larger than a chunk grows the ring (to the next power of two,
/// up to <see cref="MaxChunkBytes"/>) after one wait for the stream; a larger one is refused
/// (<see cref="TryCopyToDevice{T}"/> returns false) and the caller copies it some other way.
/// </remarks>
internal sealed unsafe class PinnedUploadRing : IDisposable
{
    /// <summary>Chunks in the ring.</summary>
    public const int Chunks = 4;

    /// <summary>The largest chunk the ring grows to (a copy larger than this is refused).</summary>
    public const long MaxChunkBytes = 64L << 20;

    private readonly IDeviceRuntime runtime;
    private readonly DeviceStream stream;
    private readonly Func<TimingEvent> createEvent;
    private readonly TimingEvent?[] drained = new TimingEvent?[Chunks]; // recorded behind each chunk's last copy
    private PinnedHostBuffer<byte>? memory;
    private int chunk;
    private long used;

    /// <summary>A ring for copies on <paramref name="stream"/>, allocated at the first copy.</summary>
    public PinnedUploadRing(IDeviceRuntime runtime, DeviceStream stream, long chunkBytes = 1L << 20, Func<TimingEvent>? createEvent = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkBytes, PinnedStaging.SlotBytes(1));
        this.runtime = runtime ?? throw new ArgumentNullException(nameof(runtime));
        this.stream = stream ?? throw new ArgumentNullException(nameof(stream));
        this.createEvent = createEvent ?? runtime.CreateTimingEvent;
        ChunkBytes = chunkBytes;
    }

    /// <summary>Bytes per chunk now.</summary>
    public long ChunkBytes { get; private set; }

    /// <summary>
    /// Copies <paramref name="values"/> into the ring and queues their copy to <paramref name="destination"/> on
    /// the ring's stream; false, with nothing done, when they are larger than <see cref="MaxChunkBytes"/>.
    /// </summary>
    public bool TryCopyToDevice<T>(ReadOnlySpan<T> values, DeviceView<T> destination)
        where T : unmanaged
    {
        var bytes = MemoryMarshal.AsBytes(values);
        long slot = PinnedStaging.SlotBytes(bytes.Length);
        if (slot > MaxChunkBytes)
        {
            return false;
        }
        if (memory is null || slot > ChunkBytes)
        {
            Allocate(Math.Max(ChunkBytes, (long)System.Numerics.BitOperations.RoundUpToPowerOf2((ulong)slot)));
        }
        else if (used + slot > ChunkBytes)
        {
            NextChunk();
        }
        byte* address = (byte*)memory!.Pointer + chunk * ChunkBytes + used;
        bytes.CopyTo(new Span<byte>(address, bytes.Length));
        runtime.CopyHostToDevice(destination.Pointer, address, bytes.Length, stream);
        used += slot;
        return true;
    }

    /// <summary>Waits for the stream to pass every copy, then frees the page-locked memory and the events.</summary>
    public void Dispose() => Release();

    private void NextChunk()
    {
        (drained[chunk] ??= createEvent()).Record(stream);
        chunk = (chunk + 1) % Chunks;
        drained[chunk]?.Synchronize(); // the device has read everything this chunk held
        used = 0;
    }

    // A new ring of chunkBytes chunks, once the device has read everything the old one held.
    private void Allocate(long chunkBytes)
    {
        Release();
        memory = runtime.AllocatePinned<byte>(chunkBytes * Chunks);
        ChunkBytes = chunkBytes;
        chunk = 0;
        used = 0;
    }

    // Frees the memory and the events once the stream has passed every copy from the ring.
    private void Release()
    {
        if (memory is not null)
        {
            stream.Synchronize();
            memory.Dispose();
            memory = null;
        }
        foreach (var e in drained)
        {
            e?.Dispose();
        }
        Array.Clear(drained);
    }
}
