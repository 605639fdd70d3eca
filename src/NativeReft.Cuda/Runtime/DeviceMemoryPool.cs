namespace NativeReft.Cuda;

/// <summary>
/// A caching allocator: freed blocks go to a free list by size class instead of back to the driver, so a
/// training step that allocates the same shapes every time makes no cuMemAlloc once the first step has run
/// (cuMemAlloc/cuMemFree synchronize the device and cost tens of microseconds each; a captured graph may not
/// call them at all).
/// </summary>
/// <remarks>
/// Sizes round up to classes 1/8 of a power of two apart (512 bytes at the least), so nearby sizes share a class
/// and a block wastes at most 12.5%. A request whose class has no free block takes the smallest free block of up
/// to twice its size before it asks the device: a trainer's batches change length from step to step, and without
/// that every new length would allocate anew and the cache would grow with blocks no later step fits. When the
/// device is out of memory, the cached blocks are freed and the allocation tried once more before
/// <see cref="DeviceOutOfMemoryException"/> is thrown. Blocks are not tied to a stream: a
/// block freed while kernels on another stream may still use it must be synchronized first (NativeReft runs a
/// training step on one stream). Thread-safe.
/// </remarks>
public sealed class DeviceMemoryPool : IDisposable
{
    private const long MinimumBlock = 512;
    private const int ClassesPerDoubling = 8;
    private const long LargestFit = 2; // a free block up to this many times the request serves it

    private readonly IDeviceMemory memory;
    private readonly bool exactSizes;
    private readonly object gate = new();
    private readonly SortedList<long, Stack<DevicePointer>> cached = new(); // by class size, for the best fit
    private readonly Dictionary<DevicePointer, long> live = new();
    private readonly List<PoolReservation> reservations = [];
    private PoolReservation? recording;
    private bool disposed;

    /// <summary>
    /// Creates a pool over <paramref name="memory"/>. With <paramref name="exactSizes"/>, every request is its own
    /// size class (no rounding), so a block ends where the request does: the emulator's check mode puts a guard
    /// page right after it, and rounding would hide an overrun behind the slack.
    /// </summary>
    public DeviceMemoryPool(IDeviceMemory memory, bool exactSizes = false)
    {
        ArgumentNullException.ThrowIfNull(memory);
        this.memory = memory;
        this.exactSizes = exactSizes;
    }

    /// <summary>Calls to the underlying allocator (cuMemAlloc on a GPU) so far.</summary>
    public long DeviceAllocations { get; private set; }

    /// <summary>Rentals served from the cache.</summary>
    public long CacheHits { get; private set; }

    /// <summary>Bytes in blocks currently rented out.</summary>
    public long BytesInUse { get; private set; }

    /// <summary>The most <see cref="BytesInUse"/> has been since the pool was made or <see cref="ResetPeak"/>.</summary>
    public long PeakBytesInUse { get; private set; }

    /// <summary>
    /// The most device memory the pool has held (blocks in use, reserved for graphs and cached) since it was made or
    /// <see cref="ResetPeak"/>: its footprint on the device, what PyTorch calls reserved.
    /// </summary>
    public long PeakBytesHeld { get; private set; }

    /// <summary>Starts both peaks over from what is in use and held now.</summary>
    public void ResetPeak()
    {
        lock (gate)
        {
            PeakBytesInUse = BytesInUse;
            PeakBytesHeld = BytesInUse + BytesCached;
        }
    }

    /// <summary>Bytes in cached (free) blocks.</summary>
    public long BytesCached { get; private set; }

    /// <summary>The size class of a request: 512 bytes at the least, else a multiple of 1/8 of the power of two below it.</summary>
    public static long RoundSize(long bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(bytes);
        long below = bytes <= 1 ? 1 : 1L << (63 - (int)long.LeadingZeroCount(bytes - 1)); // the power of two under bytes
        long step = Math.Max(MinimumBlock, below / ClassesPerDoubling);
        return checked((bytes + step - 1) / step * step);
    }

    /// <summary>A block of at least <paramref name="bytes"/>; give it back with <see cref="Return"/>.</summary>
    public DevicePointer Rent(long bytes)
    {
        long size = exactSizes ? bytes : RoundSize(bytes);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(size);
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            DevicePointer pointer;
            if (FreeClass(size) is { } free)
            {
                pointer = cached[free].Pop();
                size = free;
                BytesCached -= size;
                CacheHits++;
            }
            else if (recording is not null)
            {
                throw new InvalidOperationException(string.Create(System.Globalization.CultureInfo.InvariantCulture,
                    $"a captured step asked for a {size}-byte block the memory pool has not cached, and a graph capture cannot allocate device memory: run the step once, the same way, before capturing it"));
            }
            else
            {
                pointer = AllocateFromDevice(size);
            }
            recording?.Touched.Add(pointer);
            live.Add(pointer, size);
            BytesInUse += size;
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
            PeakBytesHeld = Math.Max(PeakBytesHeld, BytesInUse + BytesCached); // only a device allocation raises it
            return pointer;
        }
    }

    /// <summary>Gives a block back to the cache.</summary>
    public void Return(DevicePointer pointer)
    {
        lock (gate)
        {
            if (disposed)
            {
                return; // Dispose already freed every block, this one included.
            }
            if (!live.Remove(pointer, out long size))
            {
                throw new InvalidOperationException($"{pointer} was not rented from this pool (or was returned twice)");
            }
            if (reservations.Find(r => r.Touched.Contains(pointer)) is { } owner && owner != recording)
            {
                owner.Held.Add((pointer, size)); // a closed graph still uses it: it stays out of the cache
                return;
            }
            BytesInUse -= size;
            if (!cached.TryGetValue(size, out var blocks))
            {
                cached[size] = blocks = new Stack<DevicePointer>();
            }
            blocks.Push(pointer);
            BytesCached += size;
        }
    }

    /// <summary>
    /// Starts a reservation for a graph capture: from now until <see cref="PoolReservation.Close"/>, rentals come
    /// from the cache only (a capture cannot allocate device memory) and every block rented is remembered. When the
    /// capture closes, those blocks stay with the reservation (counted in use) instead of going back to the cache,
    /// so nothing else reuses memory the graph's replays write; disposing the reservation returns them.
    /// </summary>
    /// <exception cref="InvalidOperationException">A reservation is already recording.</exception>
    public PoolReservation Reserve()
    {
        lock (gate)
        {
            ObjectDisposedException.ThrowIf(disposed, this);
            if (recording is not null)
            {
                throw new InvalidOperationException("a graph capture is already reserving blocks of this pool");
            }
            recording = new PoolReservation(this);
            reservations.Add(recording);
            return recording;
        }
    }

    // The capture is over: its blocks in the cache move to the reservation (still counted in use).
    internal void Close(PoolReservation reservation)
    {
        lock (gate)
        {
            if (recording != reservation)
            {
                return;
            }
            recording = null;
            foreach (var (size, blocks) in cached)
            {
                var all = blocks.ToArray(); // top first
                blocks.Clear();
                for (int i = all.Length - 1; i >= 0; i--) // bottom first: the blocks left keep their order
                {
                    var pointer = all[i];
                    if (reservation.Touched.Contains(pointer))
                    {
                        reservation.Held.Add((pointer, size));
                        BytesCached -= size;
                        BytesInUse += size;
                    }
                    else
                    {
                        blocks.Push(pointer);
                    }
                }
            }
            PeakBytesInUse = Math.Max(PeakBytesInUse, BytesInUse);
        }
    }

    // The graph is gone: its blocks go back to the cache.
    internal void Release(PoolReservation reservation)
    {
        lock (gate)
        {
            Close(reservation);
            reservations.Remove(reservation);
            if (disposed)
            {
                return;
            }
            foreach (var (pointer, size) in reservation.Held)
            {
                BytesInUse -= size;
                if (!cached.TryGetValue(size, out var blocks))
                {
                    cached[size] = blocks = new Stack<DevicePointer>();
                }
                blocks.Push(pointer);
                BytesCached += size;
            }
            reservation.Held.Clear();
        }
    }

    /// <summary>Frees every cached block back to the device.</summary>
    public void ReleaseCached()
    {
        lock (gate)
        {
            foreach (var blocks in cached.Values)
            {
                while (blocks.Count > 0)
                {
                    memory.Free(blocks.Pop());
                }
            }
            cached.Clear();
            BytesCached = 0;
        }
    }

    /// <summary>Frees the cache and every block still rented (their buffers must not be used afterwards).</summary>
    public void Dispose()
    {
        lock (gate)
        {
            if (disposed)
            {
                return;
            }
            ReleaseCached();
            foreach (var pointer in live.Keys)
            {
                memory.Free(pointer);
            }
            live.Clear();
            foreach (var reservation in reservations)
            {
                foreach (var (pointer, _) in reservation.Held)
                {
                    memory.Free(pointer);
                }
                reservation.Held.Clear();
            }
            BytesInUse = 0;
            disposed = true;
        }
    }

    // The class to serve `size` from: its own when a block is free there, else the smallest free one up to
    // LargestFit times larger (exact sizes only in check mode, where a block must end where its request does).
    private long? FreeClass(long size)
    {
        long largest = exactSizes ? size : size * LargestFit;
        var sizes = cached.Keys;
        int lo = 0, hi = sizes.Count;
        while (lo < hi) // the first class not smaller than size
        {
            int mid = (lo + hi) / 2;
            (lo, hi) = sizes[mid] < size ? (mid + 1, hi) : (lo, mid);
        }
        for (int i = lo; i < sizes.Count && sizes[i] <= largest; i++)
        {
            if (cached.GetValueAtIndex(i).Count > 0)
            {
                return sizes[i];
            }
        }
        return null;
    }

    private DevicePointer AllocateFromDevice(long size)
    {
        DeviceAllocations++;
        try
        {
            return memory.Allocate(size);
        }
        catch (DeviceOutOfMemoryException) when (BytesCached > 0)
        {
            // The cache may hold enough in other size classes: give it back and try once more.
            ReleaseCached();
            DeviceAllocations++;
            return memory.Allocate(size);
        }
    }
}

/// <summary>
/// The blocks a captured graph uses, kept out of the pool's cache for the graph's lifetime
/// (<see cref="DeviceMemoryPool.Reserve"/>): the "arena sized once" of a replayed training step.
/// </summary>
public sealed class PoolReservation : IDisposable
{
    private readonly DeviceMemoryPool pool;

    internal PoolReservation(DeviceMemoryPool pool) => this.pool = pool;

    /// <summary>Bytes held for the graph (blocks it uses that nothing else has rented).</summary>
    public long HeldBytes => Held.Sum(b => b.Size);

    internal HashSet<DevicePointer> Touched { get; } = [];

    internal List<(DevicePointer Pointer, long Size)> Held { get; } = [];

    /// <summary>Ends the capture: the blocks it rented stay reserved, and the pool may allocate again.</summary>
    public void Close() => pool.Close(this);

    /// <summary>Gives the blocks back to the pool's cache (the graph must not run again).</summary>
    public void Dispose() => pool.Release(this);
}
