using NativeReft.Cuda;
using NativeReft.Tensors;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/rmsnorm.cu against CpuBackend&lt;float&gt; on the same bf16 inputs, odd shapes and a C = 4099 tail, forward
/// (bf16 and f32 weight, fused residual add) and backward: one suite, made concrete per runtime
/// (RmsNormKernelGpuTests on a GPU, RmsNormKernelEmulatorTests on the CPU emulator).
/// </summary>
public abstract class RmsNormKernelSuite : KernelSuite<RmsNormKernels>
{
    private const float Eps = 1e-5f;

    private static readonly object[] Shapes =
    [
        new object[] { 1, 1 }, new object[] { 7, 33 }, new object[] { 33, 129 }, new object[] { 129, 7 },
        new object[] { 3, 4099 }, new object[] { 2, 4096 }, new object[] { 5, 64 }, // C % 8 == 0: 128-bit packs
    ];

    private protected override RmsNormKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCaseSource(nameof(Shapes))]
    public void Forward_matches_the_cpu_backend_and_saves_rstd(int rows, int columns)
    {
        var x = RandomBFloat16(rows * 7 + columns, (long)rows * columns, 2f);
        var w = RandomBFloat16(columns, columns, 0.25f, 1f);
        using var xd = Device.Upload<BFloat16>(x);
        using var wd = Device.Upload<BFloat16>(w);
        using var output = Device.Allocate<BFloat16>(x.Length);
        using var rstd = Device.Allocate<float>(rows);
        Kernels.Forward(xd, wd, Eps, rows, columns, output, rstd, Stream);
        Stream.Synchronize();

        BFloat16Output.AssertClose(Floats(output), CpuRmsNorm(Floats(x), Floats(w), rows, columns), "rmsnorm out");
        Rstd(columns).AssertClose(rstd.ToArray(), ReferenceRstd(Floats(x), rows, columns), "rmsnorm rstd");
    }

    [TestCase(7, 33)]
    [TestCase(3, 4099)]
    public void Forward_with_an_f32_weight_and_no_saved_rstd(int rows, int columns)
    {
        var x = RandomBFloat16(rows + columns, (long)rows * columns, 2f);
        var w = RandomBFloat16(columns * 3, columns, 0.25f, 1f);
        using var xd = Device.Upload<BFloat16>(x);
        using var wd = Device.Upload<float>(Floats(w));
        using var output = Device.Allocate<BFloat16>(x.Length);
        Kernels.Forward(xd, wd.View, Eps, rows, columns, output, default, Stream);
        Stream.Synchronize();
        BFloat16Output.AssertClose(Floats(output), CpuRmsNorm(Floats(x), Floats(w), rows, columns), "rmsnorm f32 weight");
    }

    [TestCaseSource(nameof(Shapes))]
    public void Residual_add_fused_with_the_norm(int rows, int columns)
    {
        var residual = RandomBFloat16(rows * 5 + columns, (long)rows * columns, 4f);
        var branch = RandomBFloat16(rows * 11 + columns, (long)rows * columns);
        var w = RandomBFloat16(columns + 1, columns, 0.25f, 1f);
        using var rd = Device.Upload<BFloat16>(residual);
        using var bd = Device.Upload<BFloat16>(branch);
        using var wd = Device.Upload<BFloat16>(w);
        using var wf = Device.Upload<float>(Floats(w));
        using var output = Device.Allocate<BFloat16>(residual.Length);
        using var output2 = Device.Allocate<BFloat16>(residual.Length);
        using var rstd = Device.Allocate<float>(rows);
        using var rstd2 = Device.Allocate<float>(rows);
        Kernels.ResidualForward(rd, bd, wd, Eps, rows, columns, output, rstd, Stream);
        Stream.Synchronize();

        // The residual stream is rounded to bf16 as the bf16 model stores it: exact against the host rounding.
        var sum = residual.Select((r, i) => BFloat16.FromFloat(r.ToFloat() + branch[i].ToFloat())).ToArray();
        Assert.That(rd.ToArray().Select(v => v.Bits), Is.EqualTo(sum.Select(v => v.Bits)), "residual += branch");
        BFloat16Output.AssertClose(Floats(output), CpuRmsNorm(Floats(sum), Floats(w), rows, columns), "rmsnorm(residual)");
        Rstd(columns).AssertClose(rstd.ToArray(), ReferenceRstd(Floats(sum), rows, columns), "rmsnorm residual rstd");

        // The f32-weight variant on the same (already updated) Stream, with a zero branch: the same norm.
        using var zero = Device.Upload<BFloat16>(new BFloat16[residual.Length]);
        Kernels.ResidualForward(rd, zero, wf.View, Eps, rows, columns, output2, rstd2, Stream);
        Stream.Synchronize();
        Assert.That(rd.ToArray().Select(v => v.Bits), Is.EqualTo(sum.Select(v => v.Bits)), "residual += 0");
        BFloat16Output.AssertClose(Floats(output2), CpuRmsNorm(Floats(sum), Floats(w), rows, columns), "rmsnorm(residual), f32 weight");
    }

    [TestCaseSource(nameof(Shapes))]
    public void Add_fused_with_the_norm_out_of_place_matches_the_in_place_kernel_and_keeps_a(int rows, int columns)
    {
        var a = RandomBFloat16(rows * 7 + columns, (long)rows * columns, 4f);
        var b = RandomBFloat16(rows * 3 + columns, (long)rows * columns);
        var w = RandomBFloat16(columns + 5, columns, 0.25f, 1f);
        using var ad = Device.Upload<BFloat16>(a);
        using var bd = Device.Upload<BFloat16>(b);
        using var wd = Device.Upload<BFloat16>(w);
        using var sum = Device.Allocate<BFloat16>(a.Length);
        using var output = Device.Allocate<BFloat16>(a.Length);
        using var inPlace = Device.Upload<BFloat16>(a);
        using var inPlaceOutput = Device.Allocate<BFloat16>(a.Length);
        Kernels.AddForward(ad, bd, wd, Eps, rows, columns, sum, output, default, Stream);
        Kernels.ResidualForward(inPlace, bd, wd, Eps, rows, columns, inPlaceOutput, default, Stream);
        Stream.Synchronize();

        Assert.That(ad.ToArray().Select(v => v.Bits), Is.EqualTo(a.Select(v => v.Bits)), "a is kept");
        Assert.That(sum.ToArray().Select(v => v.Bits), Is.EqualTo(inPlace.ToArray().Select(v => v.Bits)), "sum");
        Assert.That(output.ToArray().Select(v => v.Bits), Is.EqualTo(inPlaceOutput.ToArray().Select(v => v.Bits)), "norm, bit for bit");
    }

    [TestCaseSource(nameof(Shapes))]
    public void Backward_matches_the_cpu_backend(int rows, int columns)
    {
        var x = RandomBFloat16(rows * 3 + columns, (long)rows * columns, 2f);
        var w = RandomBFloat16(columns + 2, columns, 0.25f, 1f);
        var dOut = RandomBFloat16(rows * 13 + columns, (long)rows * columns);
        using var xd = Device.Upload<BFloat16>(x);
        using var wd = Device.Upload<BFloat16>(w);
        using var wf = Device.Upload<float>(Floats(w));
        using var dOutD = Device.Upload<BFloat16>(dOut);
        using var output = Device.Allocate<BFloat16>(x.Length);
        using var rstd = Device.Allocate<float>(rows);
        using var dX = Device.Allocate<BFloat16>(x.Length);
        using var dXf = Device.Allocate<BFloat16>(x.Length);
        using var dXr = Device.Allocate<BFloat16>(x.Length);
        Kernels.Forward(xd, wd, Eps, rows, columns, output, rstd, Stream);
        Kernels.Backward(xd, wd, rstd, Eps, dOutD, rows, columns, dX, Stream);
        Kernels.Backward(xd, wf.View, rstd, Eps, dOutD, rows, columns, dXf, Stream);
        Kernels.Backward(xd, wd, default, Eps, dOutD, rows, columns, dXr, Stream); // rstd recomputed
        Stream.Synchronize();

        var expected = Cpu(x.Length, cpu =>
        {
            var dx = cpu.Zeros(rows, columns);
            cpu.RmsNormBackward(cpu.Upload(Floats(x), rows, columns), cpu.Upload(Floats(w), columns), Eps, cpu.Upload(Floats(dOut), rows, columns), dx);
            return dx;
        });
        BFloat16Output.AssertClose(Floats(dX), expected, "rmsnorm dx");
        BFloat16Output.AssertClose(Floats(dXf), expected, "rmsnorm dx, f32 weight");
        BFloat16Output.AssertClose(Floats(dXr), expected, "rmsnorm dx, rstd recomputed");
    }

    [TestCaseSource(nameof(Shapes))]
    public void Backward_adds_into_dX_when_accumulating(int rows, int columns)
    {
        var x = RandomBFloat16(rows * 5 + columns, (long)rows * columns, 2f);
        var w = RandomBFloat16(columns + 4, columns, 0.25f, 1f);
        var dOut = RandomBFloat16(rows * 11 + columns, (long)rows * columns);
        var prior = RandomBFloat16(rows * 7 + columns, (long)rows * columns);
        using var xd = Device.Upload<BFloat16>(x);
        using var wd = Device.Upload<BFloat16>(w);
        using var wf = Device.Upload<float>(Floats(w));
        using var dOutD = Device.Upload<BFloat16>(dOut);
        using var dX = Device.Upload<BFloat16>(prior);
        using var dXf = Device.Upload<BFloat16>(prior);
        Kernels.Backward(xd, wd, default, Eps, dOutD, rows, columns, dX, Stream, accumulate: true);
        Kernels.Backward(xd, wf.View, default, Eps, dOutD, rows, columns, dXf, Stream, accumulate: true);
        Stream.Synchronize();

        var expected = Cpu(x.Length, cpu =>
        {
            var dx = cpu.Upload(Floats(prior), rows, columns);
            cpu.RmsNormBackward(cpu.Upload(Floats(x), rows, columns), cpu.Upload(Floats(w), columns), Eps, cpu.Upload(Floats(dOut), rows, columns), dx,
                accumulate: true);
            return dx;
        });
        BFloat16Output.AssertClose(Floats(dX), expected, "rmsnorm dx += ...");
        BFloat16Output.AssertClose(Floats(dXf), expected, "rmsnorm dx += ..., f32 weight");
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var x = Device.Allocate<BFloat16>(12);
        using var w = Device.Allocate<BFloat16>(4);
        using var rstd = Device.Allocate<float>(3);
        Assert.Throws<ArgumentException>(() => Kernels.Forward(x, w, Eps, 3, 5, x, rstd, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Forward(x, w.View.Slice(1), Eps, 3, 4, x, rstd, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Backward(x, w, rstd.View.Slice(1), Eps, x, 3, 4, x, Stream));
    }

    private static double[] CpuRmsNorm(float[] x, float[] w, int rows, int columns) => Cpu(x.Length, cpu =>
    {
        var output = cpu.Zeros(rows, columns);
        cpu.RmsNorm(cpu.Upload(x, rows, columns), cpu.Upload(w, columns), Eps, output);
        return output;
    });

    private static double[] ReferenceRstd(float[] x, int rows, int columns)
    {
        var rstd = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            double sum = 0;
            for (int c = 0; c < columns; c++)
            {
                sum += (double)x[r * columns + c] * x[r * columns + c];
            }
            rstd[r] = 1 / Math.Sqrt(sum / columns + Eps);
        }
        return rstd;
    }
}
