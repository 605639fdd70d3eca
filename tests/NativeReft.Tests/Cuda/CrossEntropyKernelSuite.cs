using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/crossentropy.cu against the CPU backend's CrossEntropy (float64, on the same bf16 logits): per-row
/// losses, their sum and the gradient, over the test model's vocabulary, LLaMA's (32000, 128256) and odd ones;
/// ignored rows, in place, the out-of-range target flag, gradScale 0 and logits of +-80. One suite, made concrete
/// per runtime (CrossEntropyKernelGpuTests, CrossEntropyKernelEmulatorTests).
/// </summary>
public abstract class CrossEntropyKernelSuite : KernelSuite<CrossEntropyKernels>
{
    // rows, vocab: odd vocabularies take the scalar path, multiples of 8 the 128-bit one.
    private static readonly object[] Shapes =
    [
        new object[] { 5, 1 }, new object[] { 9, 7 }, new object[] { 17, 33 }, new object[] { 64, 512 },
        new object[] { 6, 4099 }, new object[] { 4, 32000 }, new object[] { 3, 128256 },
    ];

    // Tolerances, with their reasons. The reference is the float64 CPU backend (see CpuCrossEntropy).
    // The loss is fp32, log(S) + M - z[t]: the relative error of S (fp32 sums per thread, then a tree; expf within
    // an ulp or two), which is the absolute error of log(S), grows like sqrt(V) ulps in a random-walk bound
    // (measured on the emulator: 7e-7 at V = 512, 4e-7 at V = 128256); rtol covers the fp32 rounding of the loss
    // itself (160 in a +-80 row).
    private static Tolerance Loss(int vocab) => new(2e-7 * (Math.Sqrt(vocab) + 8), 1e-6);

    // The gradient is bf16, rounded once from fp32: at most half an ulp, 2^-8 of the value at the bottom of a
    // binade, hence rtol 2^-8. atol covers the fp32 error under that rounding (S, expf: ~1e-6 relative to a value
    // at most |gradScale|) and the target element p - 1, which cancels when p is near 1 (a large-logit row).
    private static Tolerance Gradient(float gradScale) => new(1e-6 * Math.Abs(gradScale), 1.0 / 256);

    private protected override CrossEntropyKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCaseSource(nameof(Shapes))]
    public void Losses_and_gradient_match_the_cpu_backend(int rows, int vocab)
    {
        var logits = RandomBFloat16(rows * 31 + vocab, (long)rows * vocab, 4f);
        var targets = Targets(rows, vocab, seed: rows + vocab);
        float gradScale = 1f / Math.Max(1, targets.Count(t => t >= 0));
        var (losses, dLogits, error) = Run(logits, targets, rows, vocab, gradScale, inPlace: false);

        var expected = CpuCrossEntropy(logits, targets, rows, vocab, gradScale);
        Loss(vocab).AssertClose(losses, expected.Losses, "losses");
        // The sum's error is at most the rows' errors added up.
        new Tolerance(Loss(vocab).Atol * rows, Loss(vocab).Rtol).AssertClose([(float)losses.Sum(l => (double)l)], [expected.Sum], "summed loss");
        Gradient(gradScale).AssertClose(dLogits, expected.DLogits, "dLogits");
        for (int r = 0; r < rows; r++)
        {
            if (targets[r] < 0)
            {
                Assert.That(losses[r], Is.Zero, $"ignored row {r}: loss");
                Assert.That(dLogits.Skip(r * vocab).Take(vocab), Is.All.Zero, $"ignored row {r}: gradient");
            }
        }
        Assert.That(error, Is.Zero, "no target out of range");
    }

    [TestCase(7, 4099)]
    [TestCase(9, 512)]
    [TestCase(2, 128256)]
    public void In_place_the_gradient_overwrites_the_logits_it_came_from(int rows, int vocab)
    {
        var logits = RandomBFloat16(rows + vocab, (long)rows * vocab, 6f);
        var targets = Targets(rows, vocab, seed: vocab);
        const float gradScale = 0.125f;
        var (losses, dLogits, _) = Run(logits, targets, rows, vocab, gradScale, inPlace: true);

        var expected = CpuCrossEntropy(logits, targets, rows, vocab, gradScale);
        Loss(vocab).AssertClose(losses, expected.Losses, "losses, in place");
        Gradient(gradScale).AssertClose(dLogits, expected.DLogits, "dLogits, in place");

        // The same launch out of place gives the same bits: in place changes nothing but where the result goes.
        var (losses2, dLogits2, _) = Run(logits, targets, rows, vocab, gradScale, inPlace: false);
        Assert.That(losses2, Is.EqualTo(losses));
        Assert.That(dLogits2, Is.EqualTo(dLogits));
    }

    [TestCase(33)]
    [TestCase(512)]
    public void A_target_outside_the_vocabulary_sets_the_error_flag_and_ignores_its_row(int vocab)
    {
        int[] targets = [2, vocab, -1, vocab + 5, 0];
        int rows = targets.Length;
        var logits = RandomBFloat16(vocab, (long)rows * vocab, 3f);
        var (losses, dLogits, error) = Run(logits, targets, rows, vocab, 0.5f, inPlace: false);

        Assert.That(error, Is.EqualTo(1));
        var reference = targets.Select(t => t >= vocab ? -1 : t).ToArray();
        var expected = CpuCrossEntropy(logits, reference, rows, vocab, 0.5f);
        Loss(vocab).AssertClose(losses, expected.Losses, "losses");
        Gradient(0.5f).AssertClose(dLogits, expected.DLogits, "dLogits");
        foreach (int r in new[] { 1, 3 })
        {
            Assert.That(losses[r], Is.Zero, $"row {r}: loss");
            Assert.That(dLogits.Skip(r * vocab).Take(vocab), Is.All.Zero, $"row {r}: gradient");
        }

        // Without a flag the rows are still ignored, and nothing is reported.
        using var zd = Device.Upload<BFloat16>(logits);
        using var td = Device.Upload<int>(targets);
        using var ld = Device.Allocate<float>(rows);
        Kernels.ForwardBackward(zd, td, rows, vocab, 0.5f, zd, ld, default, Stream);
        Stream.Synchronize();
        Assert.That(Floats(zd).Skip(vocab).Take(vocab), Is.All.Zero);
        Assert.That(ld.ToArray(), Is.EqualTo(losses));
    }

    [TestCase(1)]
    [TestCase(4099)]
    public void Sum_adds_the_losses_to_the_total_in_row_order_bit_for_bit(int rows)
    {
        var rng = new Random(rows);
        var losses = Enumerable.Range(0, rows).Select(_ => (float)(rng.NextDouble() * 12)).ToArray();
        const double start = 3.25;
        double expected = 0;
        foreach (float l in losses)
        {
            expected += l; // the host's order, as the host-summing CrossEntropy has it
        }
        using var ld = Device.Upload<float>(losses);
        using var total = Device.Upload<double>([start]);
        Kernels.Sum(ld, total, Stream);
        Stream.Synchronize();
        Assert.That(BitConverter.DoubleToInt64Bits(total.ToArray()[0]), Is.EqualTo(BitConverter.DoubleToInt64Bits(start + expected)), "added, not overwritten");
        Assert.Throws<ArgumentException>(() => Kernels.Sum(ld, ld.View.Cast<double>().Slice(0, 0), Stream), "the total is one double");
    }

    [TestCase(5, 33)]
    [TestCase(3, 32000)]
    public void A_zero_grad_scale_gives_a_zero_gradient_and_the_same_losses(int rows, int vocab)
    {
        var logits = RandomBFloat16(rows * vocab, (long)rows * vocab, 4f);
        var targets = Targets(rows, vocab, seed: 3);
        var (losses, dLogits, _) = Run(logits, targets, rows, vocab, 0f, inPlace: false);

        Assert.That(dLogits, Is.All.Zero);
        Loss(vocab).AssertClose(losses, CpuCrossEntropy(logits, targets, rows, vocab, 1f).Losses, "losses");
    }

    [TestCase(4099)]
    [TestCase(128256)]
    public void Logits_of_plus_or_minus_80_do_not_overflow(int vocab)
    {
        // Row 0: uniform in [-80, 80). Row 1: every logit 80, loss log(V). Row 2: the target is the one -80 among
        // +80s, loss 160 + log(V - 1 + e^-160). Row 3: the target is the one +80 among -80s, loss ~ 0, p ~ 1.
        const int rows = 4;
        var logits = RandomBFloat16(vocab, (long)rows * vocab, 80f);
        var high = BFloat16.FromFloat(80f);
        var low = BFloat16.FromFloat(-80f);
        int[] targets = [vocab / 3, vocab / 2, vocab - 1, 0];
        for (int c = 0; c < vocab; c++)
        {
            logits[vocab + c] = high;
            logits[2 * vocab + c] = c == targets[2] ? low : high;
            logits[3 * vocab + c] = c == targets[3] ? high : low;
        }
        const float gradScale = 1f;
        var (losses, dLogits, _) = Run(logits, targets, rows, vocab, gradScale, inPlace: true);

        Assert.That(losses.Concat(dLogits).All(float.IsFinite), "every loss and gradient finite");
        var expected = CpuCrossEntropy(logits, targets, rows, vocab, gradScale);
        Loss(vocab).AssertClose(losses, expected.Losses, "losses");
        Gradient(gradScale).AssertClose(dLogits, expected.DLogits, "dLogits");
        Assert.That(losses[1], Is.EqualTo(Math.Log(vocab)).Within(Loss(vocab).Atol + 1e-6 * Math.Log(vocab)));
        Assert.That(losses[2], Is.EqualTo(160 + Math.Log(vocab - 1)).Within(Loss(vocab).Atol + 1e-6 * 160));
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var logits = Device.Allocate<BFloat16>(12);
        using var targets = Device.Allocate<int>(3);
        using var losses = Device.Allocate<float>(3);
        using var error = Device.Allocate<int>(2);
        Assert.Throws<ArgumentException>(() => Kernels.ForwardBackward(logits, targets, 3, 5, 1f, logits, losses, default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.ForwardBackward(logits, targets, 4, 3, 1f, logits, losses, default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.ForwardBackward(logits, targets, 3, 4, 1f, logits, losses.View.Slice(1), default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.ForwardBackward(logits, targets, 3, 4, 1f, logits, losses, error, Stream));
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.ForwardBackward(logits, targets, 3, 0, 1f, logits, losses, default, Stream));
        using var shifted = Device.Allocate<BFloat16>(13);
        Assert.Throws<ArgumentException>(() => Kernels.ForwardBackward(shifted.View.Slice(0, 12), targets, 3, 4, 1f, shifted.View.Slice(1), losses, default, Stream),
            "a gradient that overlaps the logits without being them");
    }

    // Targets in [0, vocab) with about one row in four ignored (-1), never all of them.
    private static int[] Targets(int rows, int vocab, int seed)
    {
        var rng = new Random(seed);
        var targets = Enumerable.Range(0, rows).Select(_ => rng.Next(4) == 0 ? -1 : rng.Next(vocab)).ToArray();
        targets[0] = vocab - 1;
        return targets;
    }

    private (float[] Losses, float[] DLogits, int Error) Run(BFloat16[] logits, int[] targets, int rows, int vocab, float gradScale, bool inPlace)
    {
        using var zd = Device.Upload<BFloat16>(logits);
        using var dzd = Device.Upload<BFloat16>(RandomBFloat16(7, logits.Length)); // garbage: every element must be written
        using var td = Device.Upload<int>(targets);
        using var ld = Device.Upload<float>(Enumerable.Repeat(float.NaN, rows).ToArray());
        using var error = Device.Upload<int>([0]);
        Kernels.ForwardBackward(zd, td, rows, vocab, gradScale, inPlace ? zd : dzd, ld, error, Stream);
        Stream.Synchronize();
        return (ld.ToArray(), Floats(inPlace ? zd : dzd), error.ToArray()[0]);
    }

    // CpuBackend<double>'s CrossEntropy on the same bf16 logits: the gradient, and the losses from one call per
    // row (CrossEntropy returns the rows' sum). Not CpuBackend<float>: its sequential fp32 sum of V exponentials
    // errs by up to ~V ulps (2e-4 in a loss of 20.6 at V = 128256, where this kernel's tree sum errs by 1e-6, and
    // 1e-5 relative in every probability), so only float64 tells the kernel's error apart from the reference's.
    private static (double[] Losses, double Sum, double[] DLogits) CpuCrossEntropy(BFloat16[] logits, int[] targets, int rows, int vocab, float gradScale)
    {
        var z = Floats(logits);
        using var cpu = new CpuBackend<double>(threads: 1);
        var dz = cpu.Zeros(rows, vocab);
        double sum = cpu.CrossEntropy(cpu.Upload(z, rows, vocab), targets, dz, gradScale);
        var gradient = new float[z.Length];
        cpu.Download(dz, gradient);
        var losses = new double[rows];
        for (int r = 0; r < rows; r++)
        {
            var row = cpu.Upload(z.AsSpan(r * vocab, vocab), 1, vocab);
            losses[r] = cpu.CrossEntropy(row, [targets[r]], cpu.Zeros(1, vocab), 1.0);
        }
        return (losses, sum, Doubles(gradient));
    }
}
