using NativeReft.Backends;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>When the tensor-core attention can run, from a device's properties alone (no device needed).</summary>
public sealed class AttentionPathTests
{
    [Test]
    public void The_tensor_core_path_knows_which_devices_and_shapes_it_can_take()
    {
        var shape = new AttentionShape(2, 512, 512, 512, 0, 32, 8, 128);
        DeviceProperties Device(string name, int major, int minor, int sharedOptIn) => new(0, name, major, minor, 100, 1L << 34, 1024, sharedOptIn, 0);
        Assert.That(AttentionKernels.TensorCoreProblem(shape, Device("H100", 9, 0, 227 * 1024)), Is.Null);
        Assert.That(AttentionKernels.TensorCoreProblem(shape, Device("A100", 8, 0, 163 * 1024)), Is.Null);
        Assert.That(AttentionKernels.TensorCoreProblem(shape, Device("T4", 7, 5, 64 * 1024)), Does.Contain("sm_75").And.Contain("sm_80 or later"));
        // An RTX 4090 lets a block opt in to 99 KiB: enough at head size 64, not at 128 (the direct kernels run).
        var consumer = Device("RTX 4090", 8, 9, 99 * 1024);
        Assert.That(AttentionKernels.TensorCoreProblem(shape with { HeadSize = 64 }, consumer), Is.Null);
        Assert.That(AttentionKernels.TensorCoreProblem(shape, consumer), Does.Contain("shared memory").And.Contain("RTX 4090"));
        Assert.That(AttentionKernels.TensorCoreProblem(shape with { Batch = 4096 }, Device("H100", 9, 0, 227 * 1024)), Does.Contain("grid"));
    }
}
