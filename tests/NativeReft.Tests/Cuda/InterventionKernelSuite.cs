using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/intervention.cu against CpuBackend&lt;float&gt;'s Intervene and InterveneBackward on the same bf16 rows
/// and f32 parameters: every pyreft form (with and without W, subtracting P h or not, each activation, with and
/// without a dropout scale), ranks 1 to 256, odd widths and tails, on gathered rows and on a scattered row list into a
/// larger residual stream (out of place and in place, rows not listed untouched); parameter gradients accumulate
/// onto nonzero values; backward gives the same bits twice. One suite, made concrete per runtime
/// (InterventionKernelGpuTests, InterventionKernelEmulatorTests and its check-mode twin).
/// </summary>
public abstract class InterventionKernelSuite : KernelSuite<InterventionKernels>
{
    /// <summary>Where the intervened rows live.</summary>
    public enum Layout
    {
        /// <summary>No row list: the N gathered rows (the IBackend contract).</summary>
        Gathered,
        /// <summary>A row list into a residual stream of 2N + 3 rows; output and dH separate tensors.</summary>
        Scattered,
        /// <summary>A row list; forward edits the stream in place (saving the rows), backward overwrites dOut.</summary>
        InPlace,
    }

    // Tolerances, with their reasons. Outputs and dH are bf16: KernelParity.BFloat16Output (one rounding to bf16
    // of an fp32 result; it bounds the rounding itself, so the bf16 checks run at up to 0.99 of it by design).
    // Parameter gradients stay f32. Their terms are O(1) (h, dOut ~ U(-1, 1); P, W ~ U(-1, 1) / sqrt(d), so P h,
    // W h and P g are O(1)), and they differ from the reference only by fp32 rounding in another order: each
    // coefficient (delta, P g) is a d-term dot product summed by lanes and warps rather than left to right (~sqrt(d)
    // ulps of its O(1) partial sums), and each gradient sums N rows (the reference adds each row into the
    // accumulator, the kernel adds the row sum once: ~sqrt(N) ulps of O(sqrt(N))). atol 2^-22 sqrt(N) (sqrt(d) + 8)
    // is about ten times the largest error the emulator shows over this suite (it uses an eighth of it), leaving
    // room for the GPU's FMA contraction and its expf/tanhf; rtol 2^-20 covers the accumulated initial value.
    private static Tolerance ParameterGradient(int count, int dim) =>
        new(Math.ScaleB(1, -22) * Math.Sqrt(count) * (Math.Sqrt(dim) + 8), Math.ScaleB(1, -20));

    private static readonly Activation[] Activations = [Activation.Linear, Activation.Relu, Activation.Silu, Activation.Tanh];

    private protected override InterventionKernels CreateKernels(IDeviceRuntime device) => new(device);

    // Every form: W or not x subtract or not x activation x dropout or not (32), on a small odd shape; the rank and
    // the layout turn with the case number so that each form meets several of them.
    private static IEnumerable<TestCaseData> EveryForm()
    {
        int n = 0;
        foreach (bool hasWeight in new[] { true, false })
        {
            foreach (bool subtract in new[] { true, false })
            {
                foreach (var activation in Activations)
                {
                    foreach (bool dropout in new[] { false, true })
                    {
                        int rank = new[] { 4, 1, 7 }[n % 3];
                        var layout = (Layout)(n / 3 % 3); // with the rank: all 9 pairs every 9 cases
                        yield return new TestCaseData(new Form(hasWeight, subtract, activation, dropout), rank, layout, n)
                            .SetArgDisplayNames($"{(hasWeight ? "W" : "noW")}, {(subtract ? "subtract" : "add")}, {activation}, {(dropout ? "dropout" : "no dropout")}, r={rank}, {layout}");
                        n++;
                    }
                }
            }
        }
    }

    [TestCaseSource(nameof(EveryForm))]
    public void Every_form_matches_the_cpu_backend(Form form, int rank, Layout layout, int seed) =>
        RunAndCompare(new Problem(7, 33, rank, form, layout, seed));

    // Shapes: N 1, 7, 33; d 1, 33, 64, 129, 4099 (tails past every multiple of 32 and of the 256-thread block);
    // ranks 1, 4, 7, 32, past d (r > d) and the largest allowed. LoReFT's form unless the case says otherwise.
    [TestCase(1, 1, 1, Layout.Gathered, Activation.Linear)]
    [TestCase(7, 1, 32, Layout.Scattered, Activation.Tanh)]
    [TestCase(7, 33, 4, Layout.Scattered, Activation.Linear)]
    [TestCase(33, 64, 7, Layout.InPlace, Activation.Silu)]
    [TestCase(33, 64, 32, Layout.Scattered, Activation.Linear)]
    [TestCase(7, 129, 32, Layout.Gathered, Activation.Relu)]
    [TestCase(33, 129, 4, Layout.InPlace, Activation.Linear)]
    [TestCase(1, 4099, 4, Layout.InPlace, Activation.Linear)]
    [TestCase(7, 4099, 7, Layout.Gathered, Activation.Tanh)]
    [TestCase(33, 4099, 1, Layout.Scattered, Activation.Linear)]
    [TestCase(3, 33, InterventionKernels.MaxRank, Layout.Scattered, Activation.Silu)]
    public void Shapes_and_ranks_match_the_cpu_backend(int count, int dim, int rank, Layout layout, Activation activation)
    {
        foreach (bool dropout in new[] { false, true })
        {
            RunAndCompare(new Problem(count, dim, rank, new Form(true, true, activation, dropout), layout, seed: count * 31 + dim + rank));
        }
    }

    [TestCase(Layout.Gathered)]
    [TestCase(Layout.InPlace)]
    public void Backward_gives_the_same_bits_twice(Layout layout)
    {
        var problem = new Problem(33, 1031, 8, new Form(true, true, Activation.Silu, true), layout, seed: 5);
        var first = Run(problem);
        var second = Run(problem);
        Assert.Multiple(() =>
        {
            Assert.That(Bits(second.Output), Is.EqualTo(Bits(first.Output)), "forward");
            Assert.That(Bits(second.DH), Is.EqualTo(Bits(first.DH)), "dH");
            Assert.That(Bits(second.DP), Is.EqualTo(Bits(first.DP)), "dP");
            Assert.That(Bits(second.DW), Is.EqualTo(Bits(first.DW)), "dW");
            Assert.That(Bits(second.DB), Is.EqualTo(Bits(first.DB)), "db");
        });
    }

    [Test]
    public void Gradients_accumulate_across_calls()
    {
        // Two backward passes onto the same accumulators: initial + 2 * (one pass's gradient), within rounding.
        var problem = new Problem(7, 65, 4, new Form(true, true, Activation.Tanh, false), Layout.Scattered, seed: 9);
        var once = Run(problem);
        var twice = Run(problem, passes: 2);
        var tolerance = ParameterGradient(2 * problem.Count, problem.Dim);
        tolerance.AssertClose(twice.DP, Twice(once.DP, problem.InitialDP), "dP after two passes");
        tolerance.AssertClose(twice.DW, Twice(once.DW, problem.InitialDW), "dW after two passes");
        tolerance.AssertClose(twice.DB, Twice(once.DB, problem.InitialDB), "db after two passes");
    }

    [Test]
    public void A_row_outside_the_stream_touches_nothing_and_sets_the_error_flag()
    {
        const int count = 3, dim = 40, rank = 2, streamRows = 5;
        var problem = new Problem(count, dim, rank, new Form(true, true, Activation.Linear, false), Layout.Scattered, seed: 3);
        int[] rows = [1, streamRows, 3]; // the middle one is out of range
        var stream = RandomBFloat16(1, streamRows * dim);
        var sentinel = RandomBFloat16(2, streamRows * dim);
        using var streamD = Device.Upload<BFloat16>(stream);
        using var rowsD = Device.Upload<int>(rows);
        using var output = Device.Upload<BFloat16>(sentinel);
        using var saved = Device.Allocate<BFloat16>(count * dim);
        using var error = Device.Upload<int>([0]);
        using var parameters = new DeviceParameters(Device, problem.P, problem.W, problem.B, problem);
        Kernels.Forward(streamD, rowsD, count, dim, parameters.View, default, output, saved, error, Stream);
        Stream.Synchronize();
        Assert.That(error.ToArray()[0], Is.EqualTo(1), "forward flags the row");
        var got = output.ToArray();
        foreach (int untouched in new[] { 0, 2, 4 })
        {
            Assert.That(Bits(got.AsSpan(untouched * dim, dim)), Is.EqualTo(Bits(sentinel.AsSpan(untouched * dim, dim))), $"row {untouched}");
        }

        // Backward: the bad row contributes no gradient; the others match the reference on rows 1 and 3 alone.
        using var dOut = Device.Upload<BFloat16>(RandomBFloat16(4, streamRows * dim));
        using var dH = Device.Upload<BFloat16>(sentinel);
        using var gradients = new DeviceParameters(Device, problem.InitialDP, problem.InitialDW, problem.InitialDB, problem);
        using var scratch = Device.Allocate<float>(InterventionKernels.BackwardScratchLength(count, rank));
        using var error2 = Device.Upload<int>([0]);
        Kernels.Backward(saved, rowsD, count, dim, parameters.View, dOut, default, dH, gradients.View, scratch, error2, Stream);
        Stream.Synchronize();
        Assert.That(error2.ToArray()[0], Is.EqualTo(1), "backward flags the row");
        var dHGot = dH.ToArray();
        foreach (int untouched in new[] { 0, 2, 4 })
        {
            Assert.That(Bits(dHGot.AsSpan(untouched * dim, dim)), Is.EqualTo(Bits(sentinel.AsSpan(untouched * dim, dim))), $"dH row {untouched}");
        }
        var valid = new Problem(2, dim, rank, problem.Form, Layout.Scattered, seed: 3)
        {
            RowsOverride = [1, 3], StreamOverride = stream, DOutOverride = dOut.ToArray(),
        };
        var expected = Reference(valid);
        var tolerance = ParameterGradient(count, dim);
        tolerance.AssertClose(gradients.Gradient.P.ToArray(), expected.DP, "dP without the bad row");
        tolerance.AssertClose(gradients.Gradient.W!.ToArray(), expected.DW, "dW without the bad row");
        tolerance.AssertClose(gradients.Gradient.B.ToArray(), expected.DB, "db without the bad row");
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        const int count = 3, dim = 8, rank = 2;
        using var h = Device.Allocate<BFloat16>(count * dim);
        using var big = Device.Allocate<BFloat16>(5 * dim);
        using var rows = Device.Upload<int>([0, 2, 4]);
        using var p = Device.Allocate<float>(rank * dim);
        using var w = Device.Allocate<float>(rank * dim);
        using var b = Device.Allocate<float>(rank);
        using var dp = Device.Allocate<float>(rank * dim);
        using var dw = Device.Allocate<float>(rank * dim);
        using var db = Device.Allocate<float>(rank);
        using var scratch = Device.Allocate<float>(InterventionKernels.BackwardScratchLength(count, rank));
        var good = new InterventionParameters(p, w, b, rank, true, Activation.Linear);
        var grads = new InterventionParameters(dp, dw, db, rank, true, Activation.Linear);

        void Forward(DeviceView<BFloat16> input, DeviceView<int> r, int n, int d, InterventionParameters q, DeviceView<BFloat16> output) =>
            Kernels.Forward(input, r, n, d, q, default, output, default, default, Stream);
        void Backward(DeviceView<BFloat16> input, DeviceView<int> r, int n, InterventionParameters q, DeviceView<BFloat16> dOut, InterventionParameters g, DeviceView<float> s) =>
            Kernels.Backward(input, r, n, dim, q, dOut, default, dOut, g, s, default, Stream);

        Assert.Multiple(() =>
        {
            Assert.DoesNotThrow(() => Forward(h, default, count, dim, good, h), "gathered, in place");
            Assert.DoesNotThrow(() => Forward(big, rows, count, dim, good, big), "scattered, in place");
            Assert.DoesNotThrow(() => Backward(h, rows, count, good, big, grads, scratch), "scattered backward");
            Assert.Throws<ArgumentException>(() => Forward(h, default, count, dim + 1, good, h), "width");
            Assert.Throws<ArgumentException>(() => Forward(big, default, count, dim, good, big), "no row list: N rows");
            Assert.Throws<ArgumentException>(() => Forward(big, rows, 2, dim, good, big), "row list of N");
            Assert.Throws<ArgumentException>(() => Forward(big, rows, count, dim, good, big.View.Slice(dim)), "output like input");
            Assert.Throws<ArgumentException>(() => Forward(big.View.Slice(0, 4 * dim), rows, count, dim, good, big.View.Slice(dim)), "partial overlap");
            Assert.Throws<ArgumentException>(() => Forward(h, default, count, dim, good with { P = p.View.Slice(1) }, h), "P");
            Assert.Throws<ArgumentException>(() => Forward(h, default, count, dim, good with { W = w.View.Slice(1) }, h), "W");
            Assert.Throws<ArgumentException>(() => Forward(h, default, count, dim, good with { B = b.View.Slice(1) }, h), "b");
            Assert.Throws<ArgumentOutOfRangeException>(() => Forward(h, default, count, dim, good with { Rank = 0 }, h), "rank 0");
            Assert.Throws<ArgumentOutOfRangeException>(() => Forward(h, default, count, dim, good with { Activation = (Activation)9 }, h), "activation");
            Assert.Throws<ArgumentException>(() => Kernels.Forward(h, default, count, dim, good, p, h, default, default, Stream), "dropout scale");
            Assert.Throws<ArgumentException>(() => Kernels.Forward(h, default, count, dim, good, default, h, h, default, Stream), "saved input aliasing input");
            Assert.Throws<ArgumentException>(() => Kernels.Forward(h, default, count, dim, good, default, h, default, rows, Stream), "error flag");
            Assert.Throws<ArgumentException>(() => Backward(h, rows, count, good, big, grads, scratch.View.Slice(1)), "scratch");
            Assert.Throws<ArgumentException>(() => Backward(big, rows, count, good, big, grads, scratch), "backward input is compact");
            Assert.Throws<ArgumentException>(() => Backward(h, rows, count, good, big, grads with { W = default }, scratch), "dW presence");
            Assert.Throws<ArgumentException>(() => Backward(h, rows, count, good, big, grads with { Rank = 1 }, scratch), "gradient rank");
        });

        using var wide = Device.Allocate<float>((InterventionKernels.MaxRank + 1) * dim);
        using var wideB = Device.Allocate<float>(InterventionKernels.MaxRank + 1);
        var tooWide = new InterventionParameters(wide, default, wideB, InterventionKernels.MaxRank + 1, false, Activation.Linear);
        Assert.That(() => Forward(h, default, count, dim, tooWide, h), Throws.InstanceOf<ArgumentOutOfRangeException>().With.Message.Contains("MaxRank"));
    }

    // ------------------------------------------------------------------------------------------------------------

    /// <summary>An intervention's form.</summary>
    public sealed record Form(bool HasWeight, bool Subtract, Activation Activation, bool Dropout);

    private void RunAndCompare(Problem problem)
    {
        var got = Run(problem);
        var expected = Reference(problem);
        int n = problem.Count, d = problem.Dim, m = problem.StreamRows;
        string what = $"N={n} d={d} r={problem.Rank} {problem.Form} {problem.Layout}";

        // The saved rows are the input rows, bit for bit; rows not listed are what they were.
        Assert.That(Bits(got.Saved), Is.EqualTo(Bits(problem.H)), $"{what}: saved input");
        var outputBefore = problem.Layout == Layout.InPlace ? problem.Stream : problem.OutputSentinel;
        var dHBefore = problem.Layout == Layout.InPlace ? problem.DOutStream : problem.DHSentinel;
        var listed = new HashSet<int>(problem.Rows.Length == 0 ? Enumerable.Range(0, n) : problem.Rows);
        for (int row = 0; row < m; row++)
        {
            if (!listed.Contains(row))
            {
                Assert.That(Bits(got.Output.AsSpan(row * d, d)), Is.EqualTo(Bits(outputBefore.AsSpan(row * d, d))), $"{what}: output row {row} not listed");
                Assert.That(Bits(got.DH.AsSpan(row * d, d)), Is.EqualTo(Bits(dHBefore.AsSpan(row * d, d))), $"{what}: dH row {row} not listed");
            }
        }
        BFloat16Output.AssertClose(Floats(problem.Gather(got.Output)), expected.Output, $"{what}: output");
        BFloat16Output.AssertClose(Floats(problem.Gather(got.DH)), expected.DH, $"{what}: dH");
        var tolerance = ParameterGradient(n, d);
        tolerance.AssertClose(got.DP, expected.DP, $"{what}: dP");
        if (problem.Form.HasWeight)
        {
            tolerance.AssertClose(got.DW, expected.DW, $"{what}: dW");
        }
        tolerance.AssertClose(got.DB, expected.DB, $"{what}: db");
        Assert.That(got.Error, Is.Zero, $"{what}: error flag");
    }

    private sealed record Result(BFloat16[] Output, BFloat16[] Saved, BFloat16[] DH, float[] DP, float[] DW, float[] DB, int Error);

    // Forward (saving the rows), then backward on the saved rows, on the device; `passes` backward calls.
    private Result Run(Problem problem, int passes = 1)
    {
        int n = problem.Count, d = problem.Dim;
        bool inPlace = problem.Layout == Layout.InPlace;
        using var stream = Device.Upload<BFloat16>(problem.Stream);
        using var separateOutput = inPlace ? null : Device.Upload<BFloat16>(problem.OutputSentinel);
        using var saved = Device.Allocate<BFloat16>((long)n * d);
        using var rows = problem.Rows.Length == 0 ? null : Device.Upload<int>(problem.Rows);
        using var scale = problem.Form.Dropout ? Device.Upload<float>(problem.Scale) : null;
        using var error = Device.Upload<int>([0]);
        using var parameters = new DeviceParameters(Device, problem.P, problem.W, problem.B, problem);
        var output = separateOutput ?? stream;
        var rowsView = rows?.View ?? default;
        var scaleView = scale?.View ?? default;
        Kernels.Forward(stream, rowsView, n, d, parameters.View, scaleView, output, saved, error, Stream);

        using var dOut = Device.Upload<BFloat16>(problem.DOutStream);
        using var separateDH = inPlace ? null : Device.Upload<BFloat16>(problem.DHSentinel);
        using var gradients = new DeviceParameters(Device, problem.InitialDP, problem.InitialDW, problem.InitialDB, problem);
        using var scratch = Device.Allocate<float>(InterventionKernels.BackwardScratchLength(n, problem.Rank));
        var dH = separateDH ?? dOut;
        for (int pass = 0; pass < passes; pass++)
        {
            if (pass > 0 && inPlace)
            {
                Stream.Synchronize();
                dOut.CopyFrom(problem.DOutStream); // the first pass overwrote it
            }
            Kernels.Backward(saved, rowsView, n, d, parameters.View, dOut, scaleView, dH, gradients.View, scratch, error, Stream);
        }
        Stream.Synchronize();
        return new Result(output.ToArray(), saved.ToArray(), dH.ToArray(), gradients.Gradient.P.ToArray(),
            gradients.Gradient.W?.ToArray() ?? [], gradients.Gradient.B.ToArray(), error.ToArray()[0]);
    }

    private sealed record Expected(double[] Output, double[] DH, double[] DP, double[] DW, double[] DB);

    // CpuBackend<float> on the gathered rows, gradients starting from the same nonzero values.
    private static Expected Reference(Problem problem)
    {
        int n = problem.Count, d = problem.Dim, r = problem.Rank;
        using var cpu = new CpuBackend<float>(threads: 1);
        var parameters = new InterventionTensors(cpu.Upload(problem.P, r, d), problem.Form.HasWeight ? cpu.Upload(problem.W, r, d) : null,
            cpu.Upload(problem.B, r), problem.Form.Subtract, problem.Form.Activation);
        var gradients = new InterventionTensors(cpu.Upload(problem.InitialDP, r, d), problem.Form.HasWeight ? cpu.Upload(problem.InitialDW, r, d) : null,
            cpu.Upload(problem.InitialDB, r), problem.Form.Subtract, problem.Form.Activation);
        var h = cpu.Upload(Floats(problem.H), n, d);
        var scale = problem.Form.Dropout ? cpu.Upload(problem.Scale, n, d) : null;
        var output = cpu.Zeros(n, d);
        var dH = cpu.Zeros(n, d);
        cpu.Intervene(h, parameters, output, scale);
        cpu.InterveneBackward(h, parameters, cpu.Upload(Floats(problem.Gather(problem.DOutStream)), n, d), scale, dH, gradients);
        double[] Get(Tensor t, long length)
        {
            var values = new float[length];
            cpu.Download(t, values);
            return Doubles(values);
        }
        return new Expected(Get(output, (long)n * d), Get(dH, (long)n * d), Get(gradients.P, (long)r * d),
            problem.Form.HasWeight ? Get(gradients.W!, (long)r * d) : [], Get(gradients.B, r));
    }

    // Seeded inputs: h, dOut ~ U(-1, 1) in bf16; P, W ~ U(-1, 1) / sqrt(d) and b ~ U(-1, 1) in f32 (P h, W h of order
    // 1); a dropout scale of 0 or 1 / (1 - 0.25) like a real mask; nonzero initial gradients.
    private sealed class Problem
    {
        private readonly int seed;
        private int[]? rows;
        private BFloat16[]? stream, dOutStream, outputSentinel, dHSentinel;

        public Problem(int count, int dim, int rank, Form form, Layout layout, int seed)
        {
            (Count, Dim, Rank, Form, Layout, this.seed) = (count, dim, rank, form, layout, seed);
            float scale = 1f / MathF.Sqrt(dim);
            P = Scaled(RandomFloats(seed + 1, rank * dim), scale);
            W = form.HasWeight ? Scaled(RandomFloats(seed + 2, rank * dim), scale) : [];
            B = RandomFloats(seed + 3, rank);
            var rng = new Random(seed + 4);
            Scale = Enumerable.Range(0, count * dim).Select(_ => rng.NextDouble() < 0.25 ? 0f : 1f / 0.75f).ToArray();
            InitialDP = Scaled(RandomFloats(seed + 5, rank * dim), 0.5f);
            InitialDW = form.HasWeight ? Scaled(RandomFloats(seed + 6, rank * dim), 0.5f) : [];
            InitialDB = Scaled(RandomFloats(seed + 7, rank), 0.5f);
        }

        public int Count { get; }
        public int Dim { get; }
        public int Rank { get; }
        public Form Form { get; }
        public Layout Layout { get; }
        public float[] P { get; }
        public float[] W { get; }
        public float[] B { get; }
        public float[] Scale { get; }
        public float[] InitialDP { get; }
        public float[] InitialDW { get; }
        public float[] InitialDB { get; }

        public int[]? RowsOverride { get; init; }
        public BFloat16[]? StreamOverride { get; init; }
        public BFloat16[]? DOutOverride { get; init; }

        public int StreamRows => Layout == Layout.Gathered ? Count : (StreamOverride?.Length / Dim) ?? 2 * Count + 3;

        // Distinct rows in a shuffled order, so the kernels cannot lean on sorted or contiguous indices.
        public int[] Rows => RowsOverride ?? (rows ??= Layout == Layout.Gathered ? [] : Shuffled(StreamRows, Count, seed + 8));

        public BFloat16[] Stream => StreamOverride ?? (stream ??= RandomBFloat16(seed + 9, (long)StreamRows * Dim));
        public BFloat16[] DOutStream => DOutOverride ?? (dOutStream ??= RandomBFloat16(seed + 10, (long)StreamRows * Dim));
        public BFloat16[] OutputSentinel => outputSentinel ??= RandomBFloat16(seed + 11, (long)StreamRows * Dim, 8f);
        public BFloat16[] DHSentinel => dHSentinel ??= RandomBFloat16(seed + 12, (long)StreamRows * Dim, 8f);

        /// <summary>The intervened rows of the input stream.</summary>
        public BFloat16[] H => Gather(Stream);

        /// <summary>Rows [rows[0], rows[1], ...] of a stream tensor (all of it when gathered).</summary>
        public T[] Gather<T>(T[] streamTensor)
        {
            var list = Rows;
            if (list.Length == 0)
            {
                return streamTensor;
            }
            var gathered = new T[list.Length * Dim];
            for (int i = 0; i < list.Length; i++)
            {
                Array.Copy(streamTensor, (long)list[i] * Dim, gathered, (long)i * Dim, Dim);
            }
            return gathered;
        }

        private static int[] Shuffled(int range, int take, int seed)
        {
            var values = Enumerable.Range(0, range).ToArray();
            new Random(seed).Shuffle(values);
            return values[..take];
        }

        private static float[] Scaled(float[] values, float scale) => values.Select(v => v * scale).ToArray();

        private static float[] RandomFloats(int seed, int count)
        {
            var rng = new Random(seed);
            return Enumerable.Range(0, count).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        }
    }

    // The device copies of one set of parameters (or gradients).
    private sealed class DeviceParameters : IDisposable
    {
        public DeviceParameters(IDeviceRuntime device, float[] p, float[] w, float[] b, Problem problem)
        {
            Gradient = (device.Upload<float>(p), w.Length == 0 ? null : device.Upload<float>(w), device.Upload<float>(b));
            View = new InterventionParameters(Gradient.P, Gradient.W?.View ?? default, Gradient.B, problem.Rank, problem.Form.Subtract,
                problem.Form.Activation);
        }

        public (DeviceBuffer<float> P, DeviceBuffer<float>? W, DeviceBuffer<float> B) Gradient { get; }

        public InterventionParameters View { get; }

        public void Dispose()
        {
            Gradient.P.Dispose();
            Gradient.W?.Dispose();
            Gradient.B.Dispose();
        }
    }

    private static ushort[] Bits(ReadOnlySpan<BFloat16> values)
    {
        var bits = new ushort[values.Length];
        for (int i = 0; i < values.Length; i++)
        {
            bits[i] = values[i].Bits;
        }
        return bits;
    }

    private static ushort[] Bits(BFloat16[] values) => Bits(values.AsSpan());

    private static int[] Bits(float[] values) => values.Select(BitConverter.SingleToInt32Bits).ToArray();

    private static double[] Twice(float[] once, float[] initial) =>
        once.Select((v, i) => (double)initial[i] + 2.0 * ((double)v - initial[i])).ToArray();
}
