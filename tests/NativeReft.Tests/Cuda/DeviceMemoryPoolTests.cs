using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

public sealed class DeviceMemoryPoolTests
{
    /// <summary>Device memory of a fixed capacity that counts its allocations (no GPU needed).</summary>
    private sealed class FakeDeviceMemory(long capacity) : IDeviceMemory
    {
        private readonly Dictionary<DevicePointer, long> live = new();
        private ulong next = 0x7f0000000000;

        public int Allocations { get; private set; }

        public long Used => live.Values.Sum();

        public int LiveBlocks => live.Count;

        public DevicePointer Allocate(long bytes)
        {
            if (Used + bytes > capacity)
            {
                throw new DeviceOutOfMemoryException($"cuMemAlloc({bytes} bytes)", 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory", bytes, capacity - Used, capacity);
            }
            Allocations++;
            var pointer = new DevicePointer(next);
            next += (ulong)bytes + 4096;
            live.Add(pointer, bytes);
            return pointer;
        }

        public void Free(DevicePointer pointer) => Assert.That(live.Remove(pointer), Is.True, $"free of unknown {pointer}");

        public DeviceMemoryInfo GetMemoryInfo() => new(capacity - Used, capacity);
    }

    [Test]
    public void A_returned_block_serves_the_next_request_of_its_size_class()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        var first = pool.Rent(1000);
        pool.Return(first);
        var second = pool.Rent(1024); // 1000 and 1024 both round to 1024
        Assert.That(second, Is.EqualTo(first));
        Assert.That(memory.Allocations, Is.EqualTo(1));
        Assert.That(pool.CacheHits, Is.EqualTo(1));
        Assert.That(pool.BytesInUse, Is.EqualTo(1024));
    }

    [Test]
    public void A_reservation_keeps_a_captured_steps_blocks_from_everyone_else_until_it_is_disposed()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        var warm = pool.Rent(4096);
        var other = pool.Rent(1 << 20);
        pool.Return(warm);
        pool.Return(other);

        var reservation = pool.Reserve();
        var scratch = pool.Rent(4096);
        Assert.That(scratch, Is.EqualTo(warm), "a capture rents from the cache");
        pool.Return(scratch);
        Assert.That(pool.Rent(4096), Is.EqualTo(warm), "and reuses what it returned (one stream: the graph keeps the order)");
        var ex = Assert.Throws<InvalidOperationException>(() => pool.Rent(8192));
        Assert.That(ex!.Message, Does.Contain("run the step once"));
        Assert.Throws<InvalidOperationException>(() => pool.Reserve(), "one capture at a time");
        pool.Return(warm);
        reservation.Close();

        Assert.That(reservation.HeldBytes, Is.EqualTo(4096));
        Assert.That(pool.BytesInUse, Is.EqualTo(4096), "held blocks count as in use");
        var afterwards = pool.Rent(4096);
        Assert.That(afterwards, Is.Not.EqualTo(warm), "nothing else gets the graph's block");
        Assert.That(pool.Rent(1 << 20), Is.EqualTo(other), "blocks the capture never touched stay in the cache");
        reservation.Dispose();
        Assert.That(pool.Rent(4096), Is.EqualTo(warm), "disposing gives the block back");
        Assert.That(memory.Allocations, Is.EqualTo(3));
        pool.Return(afterwards);
    }

    [Test]
    public void A_block_a_capture_rented_and_kept_joins_the_reservation_when_it_comes_back()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        pool.Return(pool.Rent(512));
        var reservation = pool.Reserve();
        var kept = pool.Rent(512); // e.g. a tensor made during the capture and freed later
        reservation.Close();
        pool.Return(kept);
        Assert.That(reservation.HeldBytes, Is.EqualTo(512));
        Assert.That(pool.Rent(512), Is.Not.EqualTo(kept));
        reservation.Dispose();
        Assert.That(pool.Rent(512), Is.EqualTo(kept));
    }

    [Test]
    public void A_steady_state_training_step_makes_no_device_allocation()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        long[] step = [4 * 7 * 33, 2 * 129 * 4096, 3 << 20, 17, 4 * 7 * 33];
        void RunStep()
        {
            var blocks = step.Select(pool.Rent).ToArray();
            foreach (var block in blocks.Reverse())
            {
                pool.Return(block);
            }
        }
        RunStep();
        int afterWarmUp = memory.Allocations;
        for (int i = 0; i < 10; i++)
        {
            RunStep();
        }
        Assert.That(memory.Allocations, Is.EqualTo(afterWarmUp));
        Assert.That(pool.DeviceAllocations, Is.EqualTo(afterWarmUp));
        Assert.That(pool.BytesInUse, Is.Zero);
    }

    [TestCase(1, 512)]
    [TestCase(512, 512)]
    [TestCase(513, 1024)]
    [TestCase(4097, 4608)] // above 4 KiB, classes are 1/8 of the power of two below apart
    [TestCase((1 << 20) - 1, 1 << 20)]
    [TestCase((1 << 20) + 1, (1 << 20) + (128 << 10))]
    [TestCase(32L << 20, 32L << 20)] // Llama-2-7B, 4096 rows x dim 4096 in bf16: exact
    [TestCase(4096L * 11008 * 2, 88L << 20)] // and x hidden 11008: 86 MiB, 2.3% wasted
    public void Sizes_round_to_classes_an_eighth_of_a_power_of_two_apart(long bytes, long rounded) =>
        Assert.That(DeviceMemoryPool.RoundSize(bytes), Is.EqualTo(rounded));

    [Test]
    public void A_request_takes_the_smallest_free_block_up_to_twice_its_size()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        var (small, large, huge) = (pool.Rent(5L << 20), pool.Rent(8L << 20), pool.Rent(20L << 20));
        pool.Return(huge);
        pool.Return(large);
        pool.Return(small);
        Assert.That(pool.Rent(6L << 20), Is.EqualTo(large), "6 MiB has no free block of its class: the 8 MiB one, not the 20 MiB one");
        Assert.That(pool.BytesInUse, Is.EqualTo(8L << 20), "the block's own size is in use");
        Assert.That(pool.Rent(9L << 20), Is.Not.EqualTo(huge), "20 MiB is more than twice 9 MiB: a new block");
        Assert.That(memory.Allocations, Is.EqualTo(4));
    }

    [Test]
    public void Batches_of_changing_length_stop_allocating()
    {
        // A trainer's steps: each rents a few tensors whose sizes scale with the batch's length, then returns them.
        var memory = new FakeDeviceMemory(1L << 34);
        using var pool = new DeviceMemoryPool(memory);
        var rng = new Random(5);
        long[] widths = [4096 * 2, 11008 * 2, 32000 * 2];
        int[] allocationsAfter = new int[200];
        for (int s = 0; s < allocationsAfter.Length; s++)
        {
            long rows = 8 * rng.Next(100, 513);
            var blocks = widths.SelectMany(w => Enumerable.Repeat(rows * w, 3)).Select(pool.Rent).ToArray();
            foreach (var block in blocks)
            {
                pool.Return(block);
            }
            allocationsAfter[s] = memory.Allocations;
        }
        int late = allocationsAfter[^1] - allocationsAfter[99];
        Assert.That(late, Is.LessThanOrEqualTo(2), $"device allocations in the last 100 of 200 steps (first 100: {allocationsAfter[99]})");
        Assert.That(pool.BytesCached, Is.LessThan(4 * 3 * widths.Sum() * 8 * 512), "the cache stays within a few of the longest steps");
    }

    [Test]
    public void When_the_device_is_full_the_cache_is_released_and_the_allocation_retried()
    {
        var memory = new FakeDeviceMemory(10L << 20);
        using var pool = new DeviceMemoryPool(memory);
        pool.Return(pool.Rent(4L << 20));
        pool.Return(pool.Rent(5L << 20));
        Assert.That(pool.BytesCached, Is.EqualTo(9L << 20));
        var big = pool.Rent(8L << 20);
        Assert.That(pool.BytesCached, Is.Zero);
        Assert.That(pool.BytesInUse, Is.EqualTo(8L << 20));
        pool.Return(big);
    }

    [Test]
    public void The_held_peak_counts_cached_blocks_and_the_in_use_peak_does_not()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        using var pool = new DeviceMemoryPool(memory);
        pool.Return(pool.Rent(3L << 20)); // cached: held, not in use
        pool.ResetPeak();
        var small = pool.Rent(1L << 20); // a new size class: the device grows to 4 MiB
        pool.Return(small);
        var again = pool.Rent(3L << 20); // from the cache: the device does not grow
        Assert.That(pool.PeakBytesInUse, Is.EqualTo(3L << 20));
        Assert.That(pool.PeakBytesHeld, Is.EqualTo(4L << 20));
        Assert.That(memory.Used, Is.EqualTo(pool.PeakBytesHeld), "held is what the device gave the pool");
        pool.Return(again);
    }

    [Test]
    public void Out_of_memory_reports_the_request_and_the_free_bytes()
    {
        var memory = new FakeDeviceMemory(10L << 20);
        using var pool = new DeviceMemoryPool(memory);
        var held = pool.Rent(6L << 20);
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => pool.Rent(5L << 20))!;
        Assert.That(e.RequestedBytes, Is.EqualTo(5L << 20));
        Assert.That(e.FreeBytes, Is.EqualTo(4L << 20));
        Assert.That(e.Message, Does.Contain("requested 5.00 MiB").And.Contain("4.00 MiB (4194304 bytes) free"));
        pool.Return(held);
    }

    [Test]
    public void Returning_a_block_twice_or_one_from_elsewhere_is_an_error()
    {
        using var pool = new DeviceMemoryPool(new FakeDeviceMemory(1L << 20));
        var block = pool.Rent(100);
        pool.Return(block);
        Assert.Throws<InvalidOperationException>(() => pool.Return(block));
        Assert.Throws<InvalidOperationException>(() => pool.Return(new DevicePointer(0x1234)));
    }

    [Test]
    public void Dispose_frees_cached_and_rented_blocks()
    {
        var memory = new FakeDeviceMemory(1L << 30);
        var pool = new DeviceMemoryPool(memory);
        var rented = pool.Rent(1 << 20);
        pool.Return(pool.Rent(4096));
        pool.Dispose();
        Assert.That(memory.LiveBlocks, Is.Zero);
        Assert.DoesNotThrow(() => pool.Return(rented), "a buffer disposed after its runtime is harmless");
        Assert.Throws<ObjectDisposedException>(() => pool.Rent(1));
    }
}
