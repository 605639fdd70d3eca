using NativeReft.Cuda;
using NativeReft.Tests.Emulator;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// The ring of page-locked memory host tables are copied from: a chunk is rewritten only after the device has
/// passed its copies. The emulator runs each copy when it is queued, so the order of events is what is checked:
/// fake events log when they are recorded and waited on.
/// </summary>
public sealed class PinnedUploadRingTests
{
    [Test]
    public void A_chunk_is_refilled_only_after_the_event_behind_its_last_copy()
    {
        var runtime = Emulated.Runtime;
        using var stream = runtime.CreateStream();
        var log = new List<string>();
        int events = 0;
        using var ring = new PinnedUploadRing(runtime, stream, chunkBytes: 256, () => new LoggedEvent(log, events++));
        var buffers = new List<DeviceBuffer<int>>();
        for (int i = 0; i < 6; i++) // 256 bytes each: one chunk per copy, around the ring of 4 and on
        {
            var values = Enumerable.Range(100 * i, 64).ToArray();
            var buffer = runtime.Allocate<int>(64);
            buffers.Add(buffer);
            Assert.That(ring.TryCopyToDevice<int>(values, buffer.View), Is.True);
            log.Add($"copy {i}");
        }
        Assert.That(log, Is.EqualTo(new[]
        {
            "copy 0", "record 0", "copy 1", "record 1", "copy 2", "record 2", "copy 3",
            "record 3", "wait 0", "copy 4", // chunk 0 again: its event, recorded behind copy 0, waited on first
            "record 0", "wait 1", "copy 5",
        }));
        for (int i = 0; i < buffers.Count; i++)
        {
            Assert.That(buffers[i].ToArray(), Is.EqualTo(Enumerable.Range(100 * i, 64).ToArray()), $"copy {i}");
            buffers[i].Dispose();
        }
    }

    [Test]
    public void A_copy_larger_than_a_chunk_grows_the_ring_after_one_wait_and_a_huge_one_is_refused()
    {
        var runtime = Emulated.Runtime;
        using var stream = runtime.CreateStream();
        using var ring = new PinnedUploadRing(runtime, stream, chunkBytes: 256);
        using var small = runtime.Allocate<byte>(10);
        using var large = runtime.Allocate<byte>(1000);
        Assert.That(ring.TryCopyToDevice<byte>(new byte[10], small.View), Is.True);
        long waits = runtime.HostWaits;
        byte[] values = [.. Enumerable.Range(0, 1000).Select(i => (byte)i)];
        Assert.That(ring.TryCopyToDevice<byte>(values, large.View), Is.True);
        Assert.That(ring.ChunkBytes, Is.EqualTo(1024));
        Assert.That(runtime.HostWaits - waits, Is.EqualTo(1), "the old ring is freed once the stream has passed it");
        Assert.That(large.ToArray(), Is.EqualTo(values));
        Assert.That(ring.TryCopyToDevice<byte>(new byte[PinnedUploadRing.MaxChunkBytes + 1], default), Is.False);
    }

    private sealed class LoggedEvent(List<string> log, int id) : TimingEvent
    {
        public override void Record(DeviceStream stream) => log.Add($"record {id}");

        public override void Synchronize() => log.Add($"wait {id}");

        public override float ElapsedMillisecondsSince(TimingEvent start) => 0;
    }
}
