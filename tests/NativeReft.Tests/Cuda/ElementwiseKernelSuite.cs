using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/elementwise.cu against plain C# references, on odd sizes and tails: one suite, made concrete per
/// runtime (ElementwiseKernelGpuTests on a GPU, ElementwiseKernelEmulatorTests on the CPU emulator).
/// </summary>
public abstract class ElementwiseKernelSuite : KernelSuite<ElementwiseKernels>
{
    private static readonly int[] Sizes = [1, 7, 33, 64, 129, 100_003]; // 64: whole 128-bit packs, no tail

    // Tolerances, with their reasons. Casts and the bf16 add are exact: same float arithmetic, same rounding
    // rule (round to nearest even) on both sides. axpy may fuse into an FMA on the GPU: one rounding fewer.
    // Row sums of squares accumulate in fp32 in a different order than the float64 reference.
    private static readonly Tolerance Axpy = new(1e-6, 1e-6);

    private static Tolerance SumOfSquares(int columns) => new(1e-6, 2e-6 * Math.Sqrt(columns));

    private protected override ElementwiseKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCaseSource(nameof(Sizes))]
    public void Fill_sets_every_element(int n)
    {
        using var output = Device.Allocate<float>(n);
        Kernels.Fill(output, 2.5f, Stream);
        Stream.Synchronize();
        Assert.That(output.ToArray(), Is.All.EqualTo(2.5f));
    }

    [TestCase(100_003, 0.1)]
    [TestCase(129, 0.5)]
    [TestCase(7, 0.0)]
    public void Dropout_scales_are_the_hosts_masks_bit_for_bit(int n, double probability)
    {
        const ulong seed = 0xD15EA5E;
        using var output = Device.Allocate<float>(n);
        Kernels.FillDropoutScale(output, seed, probability, Stream);
        Stream.Synchronize();
        float keep = (float)(1 / (1 - probability));
        var expected = Enumerable.Range(0, n).Select(i => CounterHash.Drops(seed, i, probability) ? 0f : keep).ToArray();
        Assert.That(output.ToArray(), Is.EqualTo(expected));
        if (probability > 0)
        {
            Assert.That(expected.Count(v => v == 0) / (double)n, Is.EqualTo(probability).Within(5 * Math.Sqrt(probability * (1 - probability) / n)), "the dropped share, within 5 standard deviations");
        }
    }

    [TestCaseSource(nameof(Sizes))]
    public void Axpy_accumulates_a_scaled_vector(int n)
    {
        var x = Random(n, n);
        var y = Random(n + 1, n);
        using var xd = Device.Upload<float>(x);
        using var yd = Device.Upload<float>(y);
        Kernels.Axpy(yd, -0.75f, xd, Stream);
        Stream.Synchronize();
        Axpy.AssertClose(yd.ToArray(), y.Select((v, i) => v + -0.75 * x[i]).ToArray(), "axpy");
    }

    [TestCaseSource(nameof(Sizes))]
    public void Add_of_bf16_rounds_the_float_sum(int n)
    {
        var a = Random(n, n).Select(v => BFloat16.FromFloat(v * 100)).ToArray();
        var b = Random(n + 2, n).Select(v => BFloat16.FromFloat(v)).ToArray();
        using var ad = Device.Upload<BFloat16>(a);
        using var bd = Device.Upload<BFloat16>(b);
        Kernels.Add(ad, bd, ad, Stream); // in place, as on the residual stream
        Stream.Synchronize();
        Assert.That(ad.ToArray(), Is.EqualTo(a.Select((v, i) => BFloat16.FromFloat(v.ToFloat() + b[i].ToFloat())).ToArray()));
    }

    [TestCaseSource(nameof(Sizes))]
    public void Scale_multiplies_in_place(int n)
    {
        var x = Random(n, n);
        var b = x.Select(v => BFloat16.FromFloat(v * 10)).ToArray();
        using var xd = Device.Upload<float>(x);
        using var bd = Device.Upload<BFloat16>(b);
        Kernels.Scale(xd, -0.3f, Stream);
        Kernels.Scale(bd, 0.3f, Stream);
        Stream.Synchronize();
        Assert.That(xd.ToArray(), Is.EqualTo(x.Select(v => v * -0.3f).ToArray()));
        Assert.That(bd.ToArray(), Is.EqualTo(b.Select(v => BFloat16.FromFloat(v.ToFloat() * 0.3f)).ToArray()));
    }

    [Test]
    public void Casts_match_the_host_conversions_bit_for_bit()
    {
        float[] special = [0f, -0f, 1f, -1f, 1.00390625f, 1.005859375f, 3.14159265f, 65504f, 1e-40f, -1e-45f,
            float.MaxValue, float.MinValue, float.PositiveInfinity, float.NegativeInfinity, float.NaN];
        var values = special.Concat(Random(3, 1000).Select(v => v * 1e4f)).ToArray();
        using var input = Device.Upload<float>(values);
        using var rounded = Device.Allocate<BFloat16>(values.Length);
        using var widened = Device.Allocate<float>(values.Length);
        Kernels.Cast(input, rounded, Stream);
        Kernels.Cast(rounded, widened, Stream);
        Stream.Synchronize();
        var expected = values.Select(BFloat16.FromFloat).ToArray();
        Assert.That(rounded.ToArray().Select(v => v.Bits), Is.EqualTo(expected.Select(v => v.Bits)));
        Assert.That(widened.ToArray().Select(BitConverter.SingleToUInt32Bits), Is.EqualTo(expected.Select(v => BitConverter.SingleToUInt32Bits(v.ToFloat()))));
    }

    [TestCase(1, 1)]
    [TestCase(3, 7)]
    [TestCase(5, 64)]
    [TestCase(4, 1000)]
    [TestCase(2, 4104)]
    [TestCase(300, 33)]
    public void Row_sums_of_squares_of_bf16_accumulate_in_fp32(int rows, int columns)
    {
        var x = Random(rows * 31 + columns, rows * columns).Select(BFloat16.FromFloat).ToArray();
        using var xd = Device.Upload<BFloat16>(x);
        using var output = Device.Allocate<float>(rows);
        Kernels.RowSumSquares(xd, rows, columns, output, Stream);
        Stream.Synchronize();
        SumOfSquares(columns).AssertClose(output.ToArray(), RowSumSquares(x.Select(v => (double)v.ToFloat()).ToArray(), rows, columns), "rowsumsq bf16");
    }

    [TestCase(3, 7, 0)]
    [TestCase(4, 1000, 0)]
    [TestCase(4, 1000, 1)] // a view that is not 16-byte aligned takes the scalar path
    public void Row_sums_of_squares_of_f32(int rows, int columns, int offset)
    {
        var x = Random(rows + columns, rows * columns + offset);
        using var xd = Device.Upload<float>(x);
        using var output = Device.Allocate<float>(rows);
        Kernels.RowSumSquares(xd.View.Slice(offset), rows, columns, output, Stream);
        Stream.Synchronize();
        SumOfSquares(columns).AssertClose(output.ToArray(), RowSumSquares(x.Skip(offset).Select(v => (double)v).ToArray(), rows, columns), "rowsumsq f32");
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var x = Device.Allocate<float>(10);
        using var y = Device.Allocate<float>(11);
        Assert.Throws<ArgumentException>(() => Kernels.Axpy(y, 1, x, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.RowSumSquares(x.View, 3, 3, y.View.Slice(0, 3), Stream));
    }

    private static double[] RowSumSquares(double[] x, int rows, int columns)
    {
        var sums = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            for (int c = 0; c < columns; c++)
            {
                sums[r] += x[r * columns + c] * x[r * columns + c];
            }
        }
        return sums;
    }

    private static float[] Random(int seed, int count)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }
}
