using NativeReft.Cuda;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// The emulator refuses the launch shapes a GPU refuses (<see cref="LaunchLimits"/>), so a launcher that asks for
/// too large a block or grid fails in CI instead of in a GPU lease; and it reads each kernel's
/// <c>__launch_bounds__</c> from its source, as the driver enforces them.
/// </summary>
public sealed class LaunchLimitTests
{
    private EmulatorRuntime runtime = null!;
    private KernelModule elementwise = null!;
    private KernelModule flash = null!;
    private DeviceStream stream = null!;

    [OneTimeSetUp]
    public void Open()
    {
        runtime = Emulated.Runtime;
        elementwise = runtime.LoadModule("elementwise.cu");
        flash = runtime.LoadModule("flash_attention.cu");
        stream = runtime.CreateStream();
    }

    [OneTimeTearDown]
    public void Close()
    {
        stream?.Dispose();
        elementwise?.Dispose();
        flash?.Dispose();
    }

    [TestCase(2048u, 1u, 1u, 1u, 1u, "2048 threads per block; a GPU allows at most 1024")]
    [TestCase(32u, 32u, 2u, 1u, 1u, "2048 threads per block")]
    [TestCase(1u, 1u, 65u, 1u, 1u, "a block 65 deep in z")]
    [TestCase(256u, 1u, 1u, 65536u, 1u, "a grid 65536 wide in y or z")]
    [TestCase(256u, 1u, 1u, 1u, 65536u, "a grid 65536 wide in y or z")]
    [TestCase(0u, 1u, 1u, 1u, 1u, "an empty grid or block")]
    public void A_launch_a_gpu_refuses_is_refused(uint bx, uint by, uint bz, uint gy, uint gz, string problem)
    {
        using var output = runtime.Allocate<float>(4);
        var config = new LaunchConfig(new Dim3(1, gy, gz), new Dim3(bx, by, bz));
        var error = Assert.Throws<ArgumentException>(() =>
            runtime.Launch(elementwise.GetFunction("fill_forward"), config, stream, output.Pointer, 1f, 4L));
        Assert.That(error!.Message, Does.StartWith("fill_forward: a GPU refuses this launch").And.Contain(problem));
    }

    [Test]
    public void More_shared_memory_than_the_device_allows_is_refused()
    {
        using var output = runtime.Allocate<float>(4);
        int limit = runtime.Properties.MaxSharedMemoryPerBlockOptIn;
        var error = Assert.Throws<ArgumentException>(() => runtime.Launch(elementwise.GetFunction("fill_forward"),
            new LaunchConfig(1, 32, limit + 1), stream, output.Pointer, 1f, 4L));
        Assert.That(error!.Message, Does.Contain($"{limit + 1} B of shared memory per block; the device allows at most {limit}"));
    }

    [Test]
    public void A_block_of_1024_threads_runs()
    {
        using var output = runtime.Allocate<float>(1024);
        runtime.Launch(elementwise.GetFunction("fill_forward"), new LaunchConfig(1, 1024), stream, output.Pointer, 2.5f, 1024L);
        Assert.That(output.ToArray(), Is.All.EqualTo(2.5f));
    }

    [Test]
    public void A_kernels_launch_bounds_are_its_limit()
    {
        var forward = flash.GetFunction("flash_attention_forward_hs64");
        Assert.That(runtime.GetAttributes(forward).MaxThreadsPerBlock, Is.EqualTo(256));
        Assert.That(runtime.GetAttributes(elementwise.GetFunction("fill_forward")).MaxThreadsPerBlock, Is.EqualTo(1024));
        var error = Assert.Throws<ArgumentException>(() => runtime.Launch(forward, new LaunchConfig(1, 512), stream, 0L));
        Assert.That(error!.Message, Does.Contain("512 threads per block; its __launch_bounds__ allow at most 256"));
    }

    [Test]
    public void Launch_bounds_are_read_from_each_declaration()
    {
        var bounds = KernelSources.Get("flash_attention.cu").LaunchBounds;
        Assert.That(bounds, Has.Count.EqualTo(8));
        Assert.That(bounds.Keys, Does.Contain("flash_attention_backward_dkv_hs128"));
        Assert.That(bounds.Values, Is.All.EqualTo(256));
        Assert.That(KernelSources.Get("elementwise.cu").LaunchBounds, Is.Empty);
    }
}
