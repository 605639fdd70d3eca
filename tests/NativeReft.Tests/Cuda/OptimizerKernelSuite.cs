using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Tests.Backends;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/optimizer.cu against CpuBackend&lt;float&gt; (AdamW, SumOfSquares, Scale, OrthonormalizeRows run tensor by
/// tensor) on the same f32 inputs, many segments of odd lengths in one launch, determinism, the error flag, the
/// segment structs' layout against the compiled kernel's, and the host-side checks: one suite, made concrete per
/// runtime (OptimizerKernelGpuTests, OptimizerKernelEmulatorTests).
/// </summary>
public abstract class OptimizerKernelSuite : KernelSuite<OptimizerKernels>
{
    private const double LearningRate = 1e-3, Beta1 = 0.9, Beta2 = 0.999, Epsilon = 1e-8;

    // Segment lengths (a scalar, odd tails, one longer than a block's grid-stride share) and their weight decays.
    private static readonly int[] Lengths = [1, 7, 33, 4099, 100003];
    private static readonly double[] Decays = [0.01, 0, 0.1, 0, 0.05];

    // (rows, columns) of the matrices orthonormalized together in one launch.
    private static readonly (int Rows, int Columns)[] Matrices = [(1, 1), (4, 64), (7, 33), (32, 4096)];

    // Tolerances, with their reasons.
    // The sum of squares: fp32 per thread and per block (tens of terms each, then a tree of 256), against the CPU's
    // double loop: a relative error of some fp32 ulps (measured on the emulator: 3e-8).
    private static readonly Tolerance SumOfSquaresTolerance = new(0, 1e-6);

    // Orthonormalized rows: the same algorithm as the CPU's, its dot products and norms summed in another order
    // (fp32 ulps of entries at most 1 in magnitude; the GPU's FMAs round differently again), and Gram-Schmidt
    // passes such differences on from row to row (measured on the emulator: 6e-8 at most).
    private static readonly Tolerance OrthonormalTolerance = new(5e-7, 1e-5);

    private protected override OptimizerKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCase(1)]
    [TestCase(1000)]
    public void AdamW_over_many_segments_equals_the_cpu_backend_bit_for_bit(int step)
    {
        var tensors = Lengths.Select((n, k) => AdamWInputs(n, seed: 10 * k + step)).ToArray();
        using var buffers = new Buffers(Device);
        var table = tensors.Select((t, k) => new AdamWSegment(buffers.Upload(t.P), buffers.Upload(t.G), buffers.Upload(t.M), buffers.Upload(t.V), Decays[k])).ToList();
        // One more row in the table, past count: it must not be touched.
        var spare = AdamWInputs(9, seed: 99);
        var spareP = buffers.Upload(spare.P);
        table.Add(new AdamWSegment(spareP, buffers.Upload(spare.G), buffers.Upload(spare.M), buffers.Upload(spare.V), 0.5));
        using var tableD = Device.Upload<AdamWSegment>(table.ToArray());

        using var values = Device.Upload<StepValues>([StepValues.Start(LearningRate, Beta1, Beta2, step)]);
        Kernels.AdamW(tableD, Lengths.Length, values, Beta1, Beta2, Epsilon, Stream);
        Stream.Synchronize();

        using var cpu = new CpuBackend<float>(threads: 1);
        for (int k = 0; k < tensors.Length; k++)
        {
            var (p, g, m, v) = tensors[k];
            var pc = cpu.Upload(p, p.Length);
            var mc = cpu.Upload(m, m.Length);
            var vc = cpu.Upload(v, v.Length);
            cpu.AdamW(pc, cpu.Upload(g, g.Length), mc, vc, new AdamWStep(LearningRate, Beta1, Beta2, Epsilon, Decays[k], step));
            AssertBitsEqual(Download(Device, table[k].Parameter, p.Length), Download(cpu, pc, p.Length), $"segment {k} (length {p.Length}): parameter");
            AssertBitsEqual(Download(Device, table[k].M, p.Length), Download(cpu, mc, p.Length), $"segment {k}: m");
            AssertBitsEqual(Download(Device, table[k].V, p.Length), Download(cpu, vc, p.Length), $"segment {k}: v");
        }
        AssertBitsEqual(Download(Device, spareP.Pointer, spare.P.Length), spare.P, "the row past count");
    }

    [Test]
    public void Sum_of_squares_over_many_segments_matches_the_cpu_backend_and_is_deterministic()
    {
        var values = Lengths.Select((n, k) => RandomFloats(n, seed: k + 1, scale: k + 1)).ToArray();
        using var buffers = new Buffers(Device);
        using var table = Device.Upload<TensorSegment>(values.Select(v => new TensorSegment(buffers.Upload(v))).ToArray());
        using var partials = Device.Allocate<float>(OptimizerKernels.SumOfSquaresPartialsLength(values.Length));
        using var result = Device.Allocate<double>(1);

        Kernels.SumOfSquares(table, values.Length, partials, result, Stream);
        Stream.Synchronize();
        double first = result.ToArray()[0];
        Kernels.SumOfSquares(table, values.Length, partials, result, Stream);
        Stream.Synchronize();
        double second = result.ToArray()[0];

        using var cpu = new CpuBackend<float>(threads: 1);
        double expected = values.Sum(v => cpu.SumOfSquares(cpu.Upload(v, v.Length)));
        SumOfSquaresTolerance.AssertClose([(float)first], [expected], "sum of squares");
        Assert.That(BitConverter.DoubleToInt64Bits(second), Is.EqualTo(BitConverter.DoubleToInt64Bits(first)), "two runs, the same bits");

        // No segment: zero, and no partial is read.
        Kernels.SumOfSquares(table, 0, default, result, Stream);
        Stream.Synchronize();
        Assert.That(result.ToArray()[0], Is.Zero);
    }

    [Test]
    public void Scale_over_many_segments_equals_the_cpu_backend_bit_for_bit()
    {
        var values = Lengths.Select((n, k) => RandomFloats(n, seed: 20 + k, scale: 3f)).ToArray();
        using var buffers = new Buffers(Device);
        var views = values.Select(buffers.Upload).ToArray();
        using var table = Device.Upload<TensorSegment>(views.Select(v => new TensorSegment(v)).ToArray());
        const double factor = 0.3711;
        Kernels.Scale(table, values.Length, (float)factor, Stream);
        Stream.Synchronize();

        using var cpu = new CpuBackend<float>(threads: 1);
        for (int k = 0; k < values.Length; k++)
        {
            var x = cpu.Upload(values[k], values[k].Length);
            cpu.Scale(x, factor);
            AssertBitsEqual(Download(Device, views[k].Pointer, values[k].Length), Download(cpu, x, values[k].Length), $"segment {k}");
        }
    }

    [Test]
    public void Orthonormalize_rows_of_many_matrices_matches_the_cpu_backend()
    {
        var inputs = Matrices.Select((s, k) => RandomFloats(s.Rows * s.Columns, seed: 30 + k, scale: 1f)).ToArray();
        using var buffers = new Buffers(Device);
        var views = inputs.Select(buffers.Upload).ToArray();
        using var table = Device.Upload<MatrixSegment>(Matrices.Select((s, k) => new MatrixSegment(views[k], s.Rows, s.Columns)).ToArray());
        using var error = Device.Upload<int>([0]);
        Kernels.OrthonormalizeRows(table, Matrices.Length, default, error, Stream);
        Stream.Synchronize();

        Assert.That(error.ToArray()[0], Is.Zero);
        using var cpu = new CpuBackend<float>(threads: 1);
        for (int k = 0; k < Matrices.Length; k++)
        {
            var (r, d) = Matrices[k];
            var got = Download(Device, views[k].Pointer, r * d);
            AssertOrthonormal(got, r, d, $"matrix {k} ({r}x{d})");
            var reference = cpu.Upload(inputs[k], r, d);
            cpu.OrthonormalizeRows(reference);
            OrthonormalTolerance.AssertClose(got, Doubles(Download(cpu, reference, r * d)), $"matrix {k} ({r}x{d}) against the cpu backend");
        }
    }

    [Test]
    public void A_degenerate_matrix_sets_the_error_flag_and_the_others_are_still_orthonormalized()
    {
        const int d = 16;
        var good = RandomFloats(3 * d, seed: 5, scale: 1f);
        var repeated = RandomFloats(2 * d, seed: 6, scale: 1f);
        Array.Copy(repeated, 0, repeated, d, d); // row 1 = row 0: nothing left after the projection
        var wide = RandomFloats(3 * 2, seed: 7, scale: 1f);
        using var buffers = new Buffers(Device);
        var goodD = buffers.Upload(good);
        var repeatedD = buffers.Upload(repeated);
        var wideD = buffers.Upload(wide);
        using var table = Device.Upload<MatrixSegment>(
        [
            new MatrixSegment(repeatedD, 2, d),
            new MatrixSegment(wideD.Pointer, 3, 2), // raw row, past the constructor's check: rows > columns
            new MatrixSegment(goodD, 3, d),
        ]);
        using var error = Device.Upload<int>([0]);
        Kernels.OrthonormalizeRows(table, 3, default, error, Stream);
        Stream.Synchronize();

        Assert.That(error.ToArray()[0], Is.EqualTo(1));
        AssertBitsEqual(Download(Device, wideD.Pointer, wide.Length), wide, "the 3x2 matrix is left as it is");
        AssertOrthonormal(Download(Device, goodD.Pointer, good.Length), 3, d, "the good matrix");
    }

    [Test]
    public void The_segment_structs_have_the_kernels_layout()
    {
        using var output = Device.Allocate<int>(20);
        Device.Launch(Kernels.Module.GetFunction("optimizer_layout"), new LaunchConfig(1, 32), Stream, output.Pointer);
        Stream.Synchronize();
        var c = output.ToArray();

        // Sizes, then each C field's offset must hold the C# field of that name.
        Assert.That(c[0], Is.EqualTo(Unsafe.SizeOf<AdamWSegment>()).And.EqualTo(AdamWSegment.SizeInBytes), "sizeof(AdamWSegment)");
        Assert.That(c[7], Is.EqualTo(Unsafe.SizeOf<TensorSegment>()).And.EqualTo(TensorSegment.SizeInBytes), "sizeof(TensorSegment)");
        Assert.That(c[10], Is.EqualTo(Unsafe.SizeOf<MatrixSegment>()).And.EqualTo(MatrixSegment.SizeInBytes), "sizeof(MatrixSegment)");

        var adamw = Bytes(new AdamWSegment(new DevicePointer(11), new DevicePointer(12), new DevicePointer(13), new DevicePointer(14), 15, 16.5));
        Assert.That(new[] { U64(adamw, c[1]), U64(adamw, c[2]), U64(adamw, c[3]), U64(adamw, c[4]), U64(adamw, c[5]) }, Is.EqualTo(new ulong[] { 11, 12, 13, 14, 15 }));
        Assert.That(BitConverter.UInt64BitsToDouble(U64(adamw, c[6])), Is.EqualTo(16.5));
        var tensor = Bytes(new TensorSegment(new DevicePointer(21), 22));
        Assert.That(new[] { U64(tensor, c[8]), U64(tensor, c[9]) }, Is.EqualTo(new ulong[] { 21, 22 }));
        var matrix = Bytes(new MatrixSegment(new DevicePointer(31), 32, 33));
        Assert.That(U64(matrix, c[11]), Is.EqualTo(31));
        Assert.That(new[] { BitConverter.ToInt32(matrix, c[12]), BitConverter.ToInt32(matrix, c[13]) }, Is.EqualTo(new[] { 32, 33 }));
        Assert.That(c[14], Is.EqualTo(Unsafe.SizeOf<StepValues>()).And.EqualTo(StepValues.SizeInBytes), "sizeof(StepValues)");
        var step = Bytes(new StepValues(41.5, 42.5, 43.5, 44.5f, 45.5f));
        Assert.That(new[] { F64(step, c[15]), F64(step, c[16]), F64(step, c[17]) }, Is.EqualTo(new[] { 41.5, 42.5, 43.5 }));
        Assert.That(new[] { BitConverter.ToSingle(step, c[18]), BitConverter.ToSingle(step, c[19]) }, Is.EqualTo(new[] { 44.5f, 45.5f }));
    }

    [TestCase(double.NaN, 1.0)]
    [TestCase(2.0, double.PositiveInfinity)]
    public void A_step_whose_loss_or_norm_is_not_finite_updates_nothing(double loss, double sumOfSquares)
    {
        var (p, g, m, v) = AdamWInputs(301, seed: 3);
        var r = RandomFloats(4 * 64, seed: 4, scale: 1f);
        using var buffers = new Buffers(Device);
        var segment = new AdamWSegment(buffers.Upload(p), buffers.Upload(g), buffers.Upload(m), buffers.Upload(v), 0.01);
        var rd = buffers.Upload(r);
        using var table = Device.Upload<AdamWSegment>([segment]);
        using var matrices = Device.Upload<MatrixSegment>([new MatrixSegment(rd, 4, 64)]);
        using var values = Device.Upload<StepValues>([StepValues.Start(LearningRate, Beta1, Beta2, 3) with { Loss = loss, SumOfSquares = sumOfSquares }]);

        Kernels.AdamW(table, 1, values, Beta1, Beta2, Epsilon, Stream);
        Kernels.OrthonormalizeRows(matrices, 1, values, default, Stream);
        Stream.Synchronize();

        AssertBitsEqual(Download(Device, segment.Parameter, p.Length), p, "parameter");
        AssertBitsEqual(Download(Device, segment.M, m.Length), m, "m");
        AssertBitsEqual(Download(Device, segment.V, v.Length), v, "v");
        AssertBitsEqual(Download(Device, rd.Pointer, r.Length), r, "R");
    }

    // The host's rule: clip when maxNorm > 0 and the norm is finite and above it, by maxNorm / (norm + 1e-6).
    [TestCase(25.0, 1.0, true)]
    [TestCase(0.25, 1.0, false)]
    [TestCase(25.0, 0.0, false)]
    [TestCase(double.PositiveInfinity, 1.0, false)]
    [TestCase(double.NaN, 1.0, false)]
    public void Clipping_reads_the_norm_on_the_device_and_equals_the_host_rule_bit_for_bit(double sumOfSquares, double maxNorm, bool clips)
    {
        var values = Lengths.Select((n, k) => RandomFloats(n, seed: 50 + k, scale: 2f)).ToArray();
        using var buffers = new Buffers(Device);
        var views = values.Select(buffers.Upload).ToArray();
        using var table = Device.Upload<TensorSegment>(views.Select(v => new TensorSegment(v)).ToArray());
        using var step = Device.Upload<StepValues>([new StepValues(1, sumOfSquares, LearningRate, 1, 1)]);

        Kernels.Clip(table, values.Length, step, maxNorm, Stream);
        Stream.Synchronize();

        using var cpu = new CpuBackend<float>(threads: 1);
        for (int k = 0; k < values.Length; k++)
        {
            var x = cpu.Upload(values[k], values[k].Length);
            if (clips)
            {
                cpu.Scale(x, maxNorm / (Math.Sqrt(sumOfSquares) + 1e-6));
            }
            AssertBitsEqual(Download(Device, views[k].Pointer, values[k].Length), Download(cpu, x, values[k].Length), $"segment {k}");
        }
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var a = Device.Allocate<float>(6);
        using var b = Device.Allocate<float>(5);
        Assert.Throws<ArgumentException>(() => _ = new AdamWSegment(a, a, a, b, 0));
        Assert.Throws<ArgumentException>(() => _ = new MatrixSegment(a, 2, 2), "6 elements are not 2x2");
        Assert.Throws<ArgumentException>(() => _ = new MatrixSegment(a, 3, 2), "more rows than columns");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new MatrixSegment(a.View.Slice(0, 0), 0, 6));

        using var adamw = Device.Upload<AdamWSegment>([new AdamWSegment(a, a, a, a, 0)]);
        using var tensors = Device.Upload<TensorSegment>([new TensorSegment(a), new TensorSegment(b)]);
        using var matrices = Device.Upload<MatrixSegment>([new MatrixSegment(a, 2, 3)]);
        using var partials = Device.Allocate<float>(OptimizerKernels.SumOfSquaresPartialsLength(2));
        using var result = Device.Allocate<double>(2);
        using var flag = Device.Allocate<int>(2);
        using var step = Device.Upload<StepValues>([StepValues.Start(LearningRate, Beta1, Beta2, 1), default]);
        Assert.Throws<ArgumentException>(() => Kernels.AdamW(adamw, 2, step.View.Slice(0, 1), Beta1, Beta2, Epsilon, Stream), "count past the table");
        Assert.Throws<ArgumentOutOfRangeException>(() => Kernels.AdamW(adamw, -1, step.View.Slice(0, 1), Beta1, Beta2, Epsilon, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.AdamW(adamw, 1, step, Beta1, Beta2, Epsilon, Stream), "two step values");
        Assert.Throws<ArgumentException>(() => Kernels.Clip(tensors, 2, default, 1.0, Stream), "no step values");
        Assert.Throws<ArgumentOutOfRangeException>(() => StepValues.Start(LearningRate, Beta1, Beta2, 0), "steps count from 1");
        Assert.Throws<ArgumentException>(() => Kernels.SumOfSquares(tensors, 2, partials.View.Slice(1), result.View.Slice(0, 1), Stream), "scratch too small");
        Assert.Throws<ArgumentException>(() => Kernels.SumOfSquares(tensors, 2, partials, result, Stream), "two results");
        Assert.Throws<ArgumentException>(() => Kernels.Scale(tensors, 3, 1f, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.OrthonormalizeRows(matrices, 1, default, flag, Stream), "a two-int flag");
        Assert.That(OptimizerKernels.SumOfSquaresPartialsLength(3), Is.EqualTo(3L * OptimizerKernels.SumOfSquaresBlocksPerSegment));
    }

    private static (float[] P, float[] G, float[] M, float[] V) AdamWInputs(int n, int seed) =>
        (RandomFloats(n, seed, 1f), RandomFloats(n, seed + 1, 0.1f), RandomFloats(n, seed + 2, 0.01f),
            RandomFloats(n, seed + 3, 1e-3f).Select(MathF.Abs).ToArray());

    private static float[] RandomFloats(int n, int seed, float scale)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => scale * (float)(rng.NextDouble() * 2 - 1)).ToArray();
    }

    private static float[] Download(IDeviceRuntime device, DevicePointer pointer, int length)
    {
        var values = new float[length];
        device.CopyToHost(new DeviceView<float>(pointer, length), values);
        return values;
    }

    private static float[] Download(CpuBackend<float> cpu, Tensors.Tensor tensor, int length)
    {
        var values = new float[length];
        cpu.Download(tensor, values);
        return values;
    }

    private static void AssertBitsEqual(float[] actual, float[] expected, string what)
    {
        Assert.That(actual, Has.Length.EqualTo(expected.Length), what);
        int mismatch = Enumerable.Range(0, actual.Length).FirstOrDefault(i => BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(expected[i]), -1);
        Assert.That(mismatch, Is.EqualTo(-1), () => $"{what}: element {mismatch} is {actual[mismatch]:G9}, expected {expected[mismatch]:G9} (of {actual.Length})");
    }

    // R R^T = I within 1e-5, in double.
    private static void AssertOrthonormal(float[] matrix, int rows, int columns, string what)
    {
        double worst = 0;
        for (int i = 0; i < rows; i++)
        {
            for (int j = 0; j <= i; j++)
            {
                double dot = 0;
                for (int c = 0; c < columns; c++)
                {
                    dot += (double)matrix[i * columns + c] * matrix[j * columns + c];
                }
                worst = Math.Max(worst, Math.Abs(dot - (i == j ? 1 : 0)));
            }
        }
        Assert.That(worst, Is.LessThanOrEqualTo(1e-5), $"{what}: R R^T - I");
    }

    private static byte[] Bytes<T>(T value)
        where T : unmanaged => MemoryMarshal.AsBytes(new ReadOnlySpan<T>(in value)).ToArray();

    private static ulong U64(byte[] bytes, int offset) => BitConverter.ToUInt64(bytes, offset);

    private static double F64(byte[] bytes, int offset) => BitConverter.ToDouble(bytes, offset);

    // Device buffers for one test, released together.
    private sealed class Buffers(IDeviceRuntime device) : IDisposable
    {
        private readonly List<DeviceBuffer<float>> owned = [];

        public DeviceView<float> Upload(float[] values)
        {
            var buffer = device.Upload<float>(values);
            owned.Add(buffer);
            return buffer.View;
        }

        public void Dispose()
        {
            foreach (var buffer in owned)
            {
                buffer.Dispose();
            }
        }
    }
}
