using NativeReft.Cuda;
using NativeReft.Tensors;

namespace NativeReft.Tests.Cuda;

public sealed class DeviceViewTests
{
    private static readonly DeviceView<float> View = new(new DevicePointer(0x1000), 100);

    [Test]
    public void A_slice_offsets_the_pointer_by_whole_elements()
    {
        var slice = View.Slice(10, 20);
        Assert.That(slice.Pointer, Is.EqualTo(new DevicePointer(0x1000 + 40)));
        Assert.That(slice.Length, Is.EqualTo(20));
        Assert.That(slice.SizeInBytes, Is.EqualTo(80));
        Assert.That(View.Slice(100).IsEmpty, Is.True);
    }

    [TestCase(-1, 1)]
    [TestCase(0, 101)]
    [TestCase(99, 2)]
    [TestCase(101, 0)]
    public void A_slice_outside_the_view_is_rejected(long start, long length) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => View.Slice(start, length));

    [Test]
    public void A_cast_reinterprets_the_bytes()
    {
        Assert.That(View.Cast<BFloat16>().Length, Is.EqualTo(200));
        Assert.That(View.Cast<double>().Length, Is.EqualTo(50));
        Assert.Throws<ArgumentException>(() => View.Slice(0, 3).Cast<double>());
    }

    [Test]
    public void Views_and_pointers_are_kernel_argument_sized()
    {
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<DevicePointer>(), Is.EqualTo(8), "passed as a T* parameter");
        Assert.That(System.Runtime.CompilerServices.Unsafe.SizeOf<BFloat16>(), Is.EqualTo(2), "the kernels' struct bf16");
    }

    [TestCase(0L, 1u)]
    [TestCase(1L, 1u)]
    [TestCase(256L, 1u)]
    [TestCase(257L, 2u)]
    [TestCase(1L << 40, 65535u * 32)]
    public void Elementwise_launches_cover_n_and_cap_the_grid(long n, uint blocks)
    {
        var config = LaunchConfig.ForElements(n);
        Assert.That(config.Grid, Is.EqualTo(new Dim3(blocks)));
        Assert.That(config.Block, Is.EqualTo(new Dim3(256)));
    }

    [Test]
    public void BFloat16_rounds_like_the_checkpoint_loaders()
    {
        foreach (float value in (float[])[0f, -0f, 1f, 1.00390625f, 3.14159f, -65504f, float.Epsilon, float.MaxValue, float.PositiveInfinity])
        {
            Assert.That(BFloat16.FromFloat(value).Bits, Is.EqualTo(DTypes.FloatToBF16(value)), $"{value}");
            Assert.That((float)BFloat16.FromFloat(value), Is.EqualTo(DTypes.BF16ToFloat(DTypes.FloatToBF16(value))));
        }
        Assert.That(float.IsNaN(BFloat16.FromFloat(float.NaN)), Is.True);
    }
}
