using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Gpu;

[Category("Gpu")]
public sealed class DeviceMemoryGpuTests
{
    private CudaRuntime runtime = null!;

    [OneTimeSetUp]
    public void OpenGpu() => runtime = Gpu.Runtime;

    [TestCase(1)]
    [TestCase(7)]
    [TestCase(100_003)]
    public void Upload_and_download_round_trip(int n)
    {
        var values = Gpu.RandomFloats(n, n);
        using var buffer = runtime.Upload<float>(values);
        Assert.That(buffer.Length, Is.EqualTo(n));
        Assert.That(buffer.Pointer.Address % 256, Is.Zero, "driver allocations are 256-byte aligned");
        Assert.That(buffer.ToArray(), Is.EqualTo(values));
    }

    [Test]
    public void Device_to_device_copies_respect_slices()
    {
        var values = Gpu.RandomFloats(1, 1000);
        using var source = runtime.Upload<float>(values);
        using var destination = runtime.Allocate<float>(300);
        destination.Clear();
        runtime.Copy(source.View.Slice(7, 200), destination.View.Slice(50, 200));
        float[] copied = destination.ToArray();
        Assert.That(copied[..50], Is.All.Zero);
        Assert.That(copied[50..250], Is.EqualTo(values[7..207]));
        Assert.That(copied[250..], Is.All.Zero);
    }

    [Test]
    public void Fills_set_bytes_and_words()
    {
        using var buffer = runtime.Allocate<float>(1001);
        runtime.Fill32(buffer.Pointer, BitConverter.SingleToUInt32Bits(1.5f), buffer.Length, stream: null);
        Assert.That(buffer.ToArray(), Is.All.EqualTo(1.5f));
        buffer.Clear();
        Assert.That(buffer.ToArray(), Is.All.Zero);
        runtime.Fill8(buffer.Pointer, 0xff, 8, stream: null);
        Assert.That(BitConverter.SingleToUInt32Bits(buffer.ToArray()[1]), Is.EqualTo(0xffffffffu));
    }

    [Test]
    public void Pinned_buffers_copy_asynchronously_on_a_stream()
    {
        const int n = 1 << 20;
        var values = Gpu.RandomFloats(2, n);
        using var stream = runtime.CreateStream();
        using var pinnedIn = runtime.AllocatePinned<float>(n);
        using var pinnedOut = runtime.AllocatePinned<float>(n);
        using var a = runtime.Allocate<float>(n);
        using var b = runtime.Allocate<float>(n);
        values.CopyTo(pinnedIn.Span);
        using var start = runtime.CreateTimingEvent();
        using var end = runtime.CreateTimingEvent();
        start.Record(stream);
        pinnedIn.CopyToDeviceAsync(runtime, a, stream);
        runtime.Copy(a.View, b.View, stream);
        pinnedOut.CopyFromDeviceAsync(runtime, b, stream);
        end.Record(stream);
        stream.Synchronize();
        Assert.That(pinnedOut.Span.ToArray(), Is.EqualTo(values));
        Assert.That(end.ElapsedMillisecondsSince(start), Is.GreaterThan(0f));
    }

    [Test]
    public void Steady_state_steps_make_no_device_allocation()
    {
        long[] step = [4 * 7 * 33, 129 * 4096, 3 << 20, 17];
        void RunStep()
        {
            var buffers = step.Select(n => runtime.Allocate<float>(n)).ToArray();
            foreach (var buffer in buffers)
            {
                buffer.Dispose();
            }
        }
        RunStep();
        long warm = runtime.Pool.DeviceAllocations;
        for (int i = 0; i < 5; i++)
        {
            RunStep();
        }
        Assert.That(runtime.Pool.DeviceAllocations, Is.EqualTo(warm));
    }

    [Test]
    public void Out_of_memory_names_the_request_and_the_free_memory()
    {
        long tooMuch = runtime.Properties.TotalMemoryBytes * 4;
        var e = Assert.Throws<DeviceOutOfMemoryException>(() => runtime.Allocate<byte>(tooMuch))!;
        Assert.That(e.RequestedBytes, Is.GreaterThanOrEqualTo(tooMuch));
        Assert.That(e.FreeBytes, Is.Positive.And.LessThanOrEqualTo(runtime.Properties.TotalMemoryBytes));
        Assert.That(e.Message, Does.StartWith("out of GPU memory: requested"));
        using var fine = runtime.Allocate<byte>(1 << 20);
        Assert.That(fine.Pointer.IsNull, Is.False, "the runtime is still usable");
    }
}
