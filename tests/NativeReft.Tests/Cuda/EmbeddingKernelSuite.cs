using NativeReft.Cuda;
using NativeReft.Tensors;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/embedding.cu against CpuBackend&lt;float&gt;'s Embedding (exact: a gather copies bits), on the vector
/// and the scalar path, ScatterRows and ScatterAddRows (repeated ids in row order), and the out-of-range
/// contract: one suite, made concrete per runtime
/// (EmbeddingKernelGpuTests, EmbeddingKernelEmulatorTests).
/// </summary>
public abstract class EmbeddingKernelSuite : KernelSuite<EmbeddingKernels>
{
    private protected override EmbeddingKernels CreateKernels(IDeviceRuntime device) => new(device);

    [TestCase(1, 1, 1, 0)]
    [TestCase(7, 33, 7, 0)]
    [TestCase(33, 129, 33, 0)]
    [TestCase(512, 64, 129, 0)]  // C % 8 == 0, aligned: 128-bit copies
    [TestCase(512, 64, 129, 1)]  // the same from a table view that is not 16-byte aligned: scalar copies
    [TestCase(50, 4099, 3, 0)]
    public void Gather_matches_the_cpu_backend_exactly(int vocabulary, int columns, int count, int offset)
    {
        var table = RandomBFloat16(vocabulary + columns, (long)vocabulary * columns + offset);
        var rng = new Random(count);
        var tokens = Enumerable.Range(0, count).Select(_ => rng.Next(vocabulary)).ToArray();
        using var td = Device.Upload<BFloat16>(table);
        using var kd = Device.Upload<int>(tokens);
        using var output = Device.Allocate<BFloat16>((long)count * columns);
        using var error = Device.Upload<int>([0]);
        Kernels.Forward(td.View.Slice(offset), columns, kd, output, error, Stream);
        Stream.Synchronize();

        var expected = Cpu((long)count * columns, cpu =>
        {
            var o = cpu.Zeros(count, columns);
            cpu.Embedding(cpu.Upload(Floats(table.Skip(offset).ToArray()), vocabulary, columns), tokens, o);
            return o;
        });
        Assert.That(Floats(output), Is.EqualTo(expected.Select(v => (float)v)));
        Assert.That(error.ToArray()[0], Is.Zero);
    }

    [Test]
    public void An_out_of_range_id_writes_nothing_and_sets_the_error_flag()
    {
        const int vocabulary = 10, columns = 16;
        var table = RandomBFloat16(1, vocabulary * columns);
        int[] tokens = [2, vocabulary, -1, 9];
        var sentinel = Enumerable.Repeat(BFloat16.FromFloat(42f), tokens.Length * columns).ToArray();
        using var td = Device.Upload<BFloat16>(table);
        using var kd = Device.Upload<int>(tokens);
        using var output = Device.Upload<BFloat16>(sentinel);
        using var error = Device.Upload<int>([0]);
        Kernels.Forward(td, columns, kd, output, error, Stream);
        Stream.Synchronize();

        Assert.That(error.ToArray()[0], Is.EqualTo(1));
        var got = Floats(output);
        Assert.That(got.Skip(columns).Take(2 * columns), Is.All.EqualTo(42f), "rows of bad ids untouched");
        Assert.That(got.Take(columns), Is.EqualTo(Floats(table).Skip(2 * columns).Take(columns)));
        Assert.That(got.Skip(3 * columns), Is.EqualTo(Floats(table).Skip(9 * columns).Take(columns)));
    }

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        using var table = Device.Allocate<BFloat16>(30);
        using var tokens = Device.Allocate<int>(2);
        using var output = Device.Allocate<BFloat16>(8);
        Assert.Throws<ArgumentException>(() => Kernels.Forward(table, 4, tokens, output, default, Stream));
        Assert.Throws<ArgumentException>(() => Kernels.Forward(table, 3, tokens, output, default, Stream));
    }

    [TestCase(1, 1, 1)]
    [TestCase(7, 33, 20)]
    [TestCase(33, 4099, 40)]
    public void Scatters_match_the_cpu_backend(int count, int columns, int outRows)
    {
        var rng = new Random(count + columns);
        int[] distinct = Enumerable.Range(0, outRows).OrderBy(_ => rng.Next()).Take(count).ToArray();
        int[] repeated = Enumerable.Range(0, count).Select(_ => rng.Next(outRows)).ToArray();
        var source = RandomBFloat16(count, (long)count * columns);
        var initial = RandomBFloat16(count + 1, (long)outRows * columns);
        using var src = Device.Upload<BFloat16>(source);
        using var distinctRows = Device.Upload<int>(distinct);
        using var repeatedRows = Device.Upload<int>(repeated);
        using var scattered = Device.Upload<BFloat16>(initial);
        using var added = Device.Upload<BFloat16>(initial);
        using var error = Device.Upload<int>([0]);
        Kernels.ScatterRows(src, distinctRows, columns, scattered, error, Stream);
        Kernels.ScatterAddRows(src, repeatedRows, columns, added, error, Stream);
        Stream.Synchronize();

        var expectedScatter = Cpu(initial.Length, cpu =>
        {
            var o = cpu.Upload(Floats(initial), outRows, columns);
            cpu.ScatterRows(cpu.Upload(Floats(source), count, columns), distinct, o);
            return o;
        });
        Assert.That(Doubles(Floats(scattered)), Is.EqualTo(expectedScatter), "a scatter copies bits");
        // bf16 += in row order: the reference rounds after every add, as the kernel does.
        var expectedAdd = Floats(initial);
        for (int i = 0; i < count; i++)
        {
            for (int c = 0; c < columns; c++)
            {
                int at = repeated[i] * columns + c;
                expectedAdd[at] = BFloat16.FromFloat(expectedAdd[at] + source[i * columns + c].ToFloat()).ToFloat();
            }
        }
        Assert.That(Floats(added), Is.EqualTo(expectedAdd), "scatter-add, repeated ids in order");
        Assert.That(error.ToArray()[0], Is.Zero);
    }

    [Test]
    public void A_scatter_to_a_row_out_of_range_writes_nothing_and_sets_the_error_flag()
    {
        const int columns = 5;
        var source = RandomBFloat16(3, 3 * columns);
        using var src = Device.Upload<BFloat16>(source);
        using var rows = Device.Upload<int>([1, 4, -1]);
        foreach (bool accumulate in new[] { false, true })
        {
            using var output = Device.Upload<BFloat16>(new BFloat16[4 * columns]);
            using var error = Device.Upload<int>([0]);
            if (accumulate)
            {
                Kernels.ScatterAddRows(src, rows, columns, output, error, Stream);
            }
            else
            {
                Kernels.ScatterRows(src, rows, columns, output, error, Stream);
            }
            Stream.Synchronize();
            Assert.That(error.ToArray()[0], Is.EqualTo(1), accumulate ? "scatter-add" : "scatter");
            var got = Floats(output);
            Assert.That(got.Skip(columns).Take(columns), Is.EqualTo(Floats(source).Take(columns)));
            Assert.That(got.Where((_, i) => i / columns != 1), Is.All.Zero);
        }
    }
}
