using NativeReft.Cuda;
using NativeReft.Tensors;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/rope.cu against CpuBackend&lt;float&gt;'s Rope (forward, and inverse for backward) on the same bf16 inputs
/// and the same f32 tables, odd shapes, and the out-of-range position contract: one suite, made concrete per
/// runtime (RopeKernelGpuTests, RopeKernelEmulatorTests).
/// </summary>
public abstract class RopeKernelSuite : KernelSuite<RopeKernels>
{
    private const int MaxPositions = 300;

    // rows, heads, head size (half = head size / 2 odd in most of them)
    private static readonly object[] Shapes =
    [
        new object[] { 1, 1, 2 }, new object[] { 7, 3, 14 }, new object[] { 33, 4, 34 }, new object[] { 129, 2, 64 },
        new object[] { 3, 5, 4098 }, new object[] { 5, 8, 128 }, new object[] { 9, 2, 16 }, // hs/2 % 8 == 0: 128-bit packs
    ];

    private protected override RopeKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCaseSource(nameof(Shapes))]
    public void Forward_and_backward_match_the_cpu_backend(int rows, int heads, int headSize)
    {
        var (cos, sin) = Tables(headSize);
        var rng = new Random(rows + heads + headSize);
        var positions = Enumerable.Range(0, rows).Select(_ => rng.Next(MaxPositions)).ToArray();
        long n = (long)rows * heads * headSize;
        var x = RandomBFloat16(rows * 3 + headSize, n, 3f);
        var dOut = RandomBFloat16(rows * 5 + headSize, n);
        using var xd = Device.Upload<BFloat16>(x);
        using var dd = Device.Upload<BFloat16>(dOut);
        using var cosd = Device.Upload<float>(cos);
        using var sind = Device.Upload<float>(sin);
        using var pd = Device.Upload<int>(positions);
        using var error = Device.Upload<int>([0]);
        Kernels.Forward(xd, cosd, sind, pd, heads, headSize, error, Stream);
        Kernels.Backward(dd, cosd, sind, pd, heads, headSize, error, Stream);
        Stream.Synchronize();

        BFloat16Output.AssertClose(Floats(xd), CpuRope(Floats(x), cos, sin, positions, heads, headSize, inverse: false), "rope forward");
        BFloat16Output.AssertClose(Floats(dd), CpuRope(Floats(dOut), cos, sin, positions, heads, headSize, inverse: true), "rope backward");
        Assert.That(error.ToArray()[0], Is.Zero, "no position out of range");
    }

    [Test]
    public void An_out_of_range_position_leaves_its_row_and_sets_the_error_flag()
    {
        const int heads = 2, headSize = 8;
        var (cos, sin) = Tables(headSize);
        int[] positions = [3, MaxPositions, -1, 5];
        var x = RandomBFloat16(9, positions.Length * heads * headSize);
        using var xd = Device.Upload<BFloat16>(x);
        using var cosd = Device.Upload<float>(cos);
        using var sind = Device.Upload<float>(sin);
        using var pd = Device.Upload<int>(positions);
        using var error = Device.Upload<int>([0]);
        Kernels.Forward(xd, cosd, sind, pd, heads, headSize, error, Stream);
        Stream.Synchronize();

        Assert.That(error.ToArray()[0], Is.EqualTo(1));
        var got = xd.ToArray();
        int width = heads * headSize;
        Assert.That(got.Skip(width).Take(2 * width).Select(v => v.Bits), Is.EqualTo(x.Skip(width).Take(2 * width).Select(v => v.Bits)), "rows 1 and 2 untouched");
        var valid = new[] { 0, 3 };
        foreach (int r in valid)
        {
            var expected = CpuRope(Floats(x.Skip(r * width).Take(width).ToArray()), cos, sin, [positions[r]], heads, headSize, inverse: false);
            BFloat16Output.AssertClose(Floats(got.Skip(r * width).Take(width).ToArray()), expected, $"row {r}");
        }

        // Without a flag the bad rows are still skipped, and nothing is reported.
        Kernels.Forward(xd, cosd, sind, pd, heads, headSize, default, Stream);
        Stream.Synchronize();
        Assert.That(xd.ToArray().Skip(width).Take(2 * width).Select(v => v.Bits), Is.EqualTo(x.Skip(width).Take(2 * width).Select(v => v.Bits)));
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var x = Device.Allocate<BFloat16>(16);
        using var table = Device.Allocate<float>(8);
        using var positions = Device.Allocate<int>(2);
        Assert.Throws<ArgumentException>(() => Kernels.Forward(x, table, table, positions, 1, 7, default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Forward(x, table, table, positions, 3, 4, default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Forward(x, table, table.View.Slice(1), positions, 2, 4, default, Stream));
    }

    // HF's tables: angle = p * theta^(-2i / headSize), in float64, stored f32.
    private static (float[] Cos, float[] Sin) Tables(int headSize)
    {
        int half = headSize / 2;
        var cos = new float[MaxPositions * half];
        var sin = new float[MaxPositions * half];
        for (int p = 0; p < MaxPositions; p++)
        {
            for (int i = 0; i < half; i++)
            {
                double angle = p * Math.Pow(10000.0, -2.0 * i / headSize);
                cos[p * half + i] = (float)Math.Cos(angle);
                sin[p * half + i] = (float)Math.Sin(angle);
            }
        }
        return (cos, sin);
    }

    private static double[] CpuRope(float[] x, float[] cos, float[] sin, int[] positions, int heads, int headSize, bool inverse) => Cpu(x.Length, cpu =>
    {
        int half = headSize / 2;
        var t = cpu.Upload(x, positions.Length, heads * headSize);
        cpu.Rope(t, cpu.Upload(cos, MaxPositions, half), cpu.Upload(sin, MaxPositions, half), positions, heads, inverse);
        return t;
    });
}
