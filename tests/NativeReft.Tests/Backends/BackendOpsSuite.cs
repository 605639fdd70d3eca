using NativeReft.Backends;
using NativeReft.Model;
using NativeReft.Tensors;

namespace NativeReft.Tests.Backends;

/// <summary>
/// Every backend op against the float64 reference on odd shapes (1, 7, 33, 129: tails of every vector width).
/// Abstract: each backend makes it concrete with its own tolerance, so all backends face the same checks.
/// </summary>
public abstract class BackendOpsSuite
{
    private static readonly int[] OddSizes = [1, 7, 33, 129];

    private IBackend backend = null!;

    private protected abstract IBackend CreateBackend();

    /// <summary>Tolerance for an op whose outputs sum about <paramref name="terms"/> products.</summary>
    private protected abstract Tolerance ToleranceFor(int terms);

    [SetUp]
    public void CreateBackendForTest() => backend = CreateBackend();

    [TearDown]
    public void DisposeBackend() => (backend as IDisposable)?.Dispose(); // null when CreateBackend skipped the test (no GPU)

    [TestCaseSource(nameof(OddSizes))]
    public void Embedding_gathers_rows(int n)
    {
        var rng = new Random(n);
        int vocab = 37, c = n + 2;
        var table = Random(rng, vocab * c);
        int[] tokens = Enumerable.Range(0, n).Select(_ => rng.Next(vocab)).ToArray();
        using var t = Upload(table, vocab, c);
        using var o = backend.Zeros(n, c);
        backend.Embedding(t, tokens, o);
        ToleranceFor(1).AssertClose(Download(o), Reference.Embedding(table, c, tokens), "embedding");
    }

    [Test]
    public void Embedding_rejects_a_token_outside_the_vocabulary()
    {
        using var t = backend.Zeros(5, 3);
        using var o = backend.Zeros(1, 3);
        Assert.Throws<ArgumentOutOfRangeException>(() => backend.Embedding(t, [5], o));
    }

    [TestCaseSource(nameof(OddSizes))]
    public void RmsNorm_matches_reference(int c)
    {
        var rng = new Random(c);
        int rows = 5;
        var x = Random(rng, rows * c);
        var w = Random(rng, c);
        using var xt = Upload(x, rows, c);
        using var wt = Upload(w, c);
        using var o = backend.Zeros(rows, c);
        backend.RmsNorm(xt, wt, 1e-5f, o);
        ToleranceFor(c).AssertClose(Download(o), Reference.RmsNorm(x, w, rows, c, 1e-5), "rmsnorm");
    }

    [TestCase(1, 1, 1)]
    [TestCase(1, 129, 33)]
    [TestCase(7, 33, 129)]
    [TestCase(33, 7, 1)]
    [TestCase(129, 129, 7)]
    [TestCase(3, 1000, 777)] // big enough to run on several threads
    public void MatMul_matches_reference(int m, int k, int n)
    {
        var rng = new Random(m * 1000 + k * 10 + n);
        var x = Random(rng, m * k);
        var w = Random(rng, n * k);
        using var xt = Upload(x, m, k);
        using var wt = Upload(w, n, k);
        using var o = backend.Zeros(m, n);
        backend.MatMul(xt, wt, o);
        ToleranceFor(k).AssertClose(Download(o), Reference.MatMul(x, w, m, k, n), "matmul");
    }

    [TestCase(1, 1, 2)]
    [TestCase(7, 3, 8)]
    [TestCase(33, 2, 18)]
    [TestCase(129, 1, 64)]
    public void Rope_matches_reference(int rows, int heads, int headSize)
    {
        var rng = new Random(rows);
        var x = Random(rng, rows * heads * headSize);
        int[] positions = Enumerable.Range(0, rows).Select(_ => rng.Next(200)).ToArray();
        var config = new LlamaConfig { Dim = heads * headSize, HiddenDim = 1, Layers = 1, Heads = heads, KvHeads = heads, VocabSize = 3, MaxSeqLen = 200 };
        double[] inv = config.RopeInverseFrequencies();
        int half = headSize / 2;
        var cos = new float[200 * half];
        var sin = new float[200 * half];
        for (int p = 0; p < 200; p++)
        {
            for (int i = 0; i < half; i++)
            {
                cos[p * half + i] = (float)Math.Cos(p * inv[i]);
                sin[p * half + i] = (float)Math.Sin(p * inv[i]);
            }
        }
        using var xt = Upload(x, rows, heads * headSize);
        using var ct = backend.UploadFp32(cos, 200, half);
        using var st = backend.UploadFp32(sin, 200, half);
        backend.Rope(xt, ct, st, positions, heads);
        // The tables are rounded to float, so even the f64 backend sees angles to ~1e-7.
        var own = ToleranceFor(2);
        new Tolerance(Math.Max(1e-6, own.Atol), Math.Max(1e-5, own.Rtol)).AssertClose(Download(xt), Reference.Rope(x, rows, heads, headSize, positions, 10000), "rope");
    }

    [TestCase(1, 1, 1, 1, 1, 8)]
    [TestCase(2, 7, 4, 2, 1, 16)]    // GQA: 2 query heads per KV head
    [TestCase(1, 33, 8, 1, 1, 8)]    // multi-query
    [TestCase(1, 129, 2, 2, 1, 32)]
    [TestCase(3, 5, 6, 3, 4, 8)]     // queries appended after 4 cached positions
    public void Attention_matches_reference(int batch, int tq, int heads, int kvHeads, int offset, int hs)
    {
        var rng = new Random(batch * 100 + tq);
        int tk = offset + tq;
        int stride = tk + 3; // a cache with room to spare: unused rows must be ignored
        var q = Random(rng, batch * tq * heads * hs);
        var k = Random(rng, batch * tk * kvHeads * hs);
        var v = Random(rng, batch * tk * kvHeads * hs);
        using var qt = Upload(q, batch * tq, heads * hs);
        using var kt = Upload(Strided(k, batch, tk, stride, kvHeads * hs), batch * stride, kvHeads * hs);
        using var vt = Upload(Strided(v, batch, tk, stride, kvHeads * hs), batch * stride, kvHeads * hs);
        using var o = backend.Zeros(batch * tq, heads * hs);
        backend.Attention(qt, kt, vt, o, new AttentionShape(batch, tq, tk, stride, offset, heads, kvHeads, hs), default);
        ToleranceFor(tk * hs).AssertClose(Download(o),
            Reference.Attention(q, k, v, batch, tq, tk, offset, heads, kvHeads, hs, null), "attention");
    }

    [Test]
    public void Attention_skips_masked_keys_and_zeroes_queries_that_see_none()
    {
        var rng = new Random(5);
        int batch = 2, t = 7, heads = 2, hs = 8;
        var q = Random(rng, batch * t * heads * hs);
        var k = Random(rng, batch * t * heads * hs);
        var v = Random(rng, batch * t * heads * hs);
        // Sequence 0 is left-padded by 3; sequence 1 has a hole in the middle.
        bool[] mask = [false, false, false, true, true, true, true, true, true, false, true, true, true, true];
        using var qt = Upload(q, batch * t, heads * hs);
        using var kt = Upload(k, batch * t, heads * hs);
        using var vt = Upload(v, batch * t, heads * hs);
        using var o = backend.Zeros(batch * t, heads * hs);
        backend.Attention(qt, kt, vt, o, new AttentionShape(batch, t, t, t, 0, heads, heads, hs), mask);
        var expected = Reference.Attention(q, k, v, batch, t, t, 0, heads, heads, hs, mask);
        Assert.That(expected.Take(3 * heads * hs), Is.All.EqualTo(0.0), "the reference zeroes queries that see no key");
        ToleranceFor(t * hs).AssertClose(Download(o), expected, "masked attention");
    }

    [TestCaseSource(nameof(OddSizes))]
    public void SwiGlu_matches_reference(int n)
    {
        var rng = new Random(n);
        var g = Random(rng, 3 * n, 6);
        var u = Random(rng, 3 * n);
        using var gt = Upload(g, 3, n);
        using var ut = Upload(u, 3, n);
        using var o = backend.Zeros(3, n);
        backend.SwiGlu(gt, ut, o);
        ToleranceFor(4).AssertClose(Download(o), Reference.SwiGlu(g, u), "swiglu");
        backend.SwiGlu(gt, ut, gt); // the model writes the result over the gate
        ToleranceFor(4).AssertClose(Download(gt), Reference.SwiGlu(g, u), "swiglu in place");
    }

    [TestCaseSource(nameof(OddSizes))]
    public void Add_matches_reference_and_may_write_in_place(int n)
    {
        var rng = new Random(n);
        var a = Random(rng, 2 * n);
        var b = Random(rng, 2 * n);
        using var at = Upload(a, 2, n);
        using var bt = Upload(b, 2, n);
        backend.Add(at, bt, at);
        ToleranceFor(1).AssertClose(Download(at), Reference.Add(a, b), "add");
    }

    [Test]
    public void CopyRows_places_each_batch_at_its_offset()
    {
        var src = Enumerable.Range(1, 2 * 3 * 4).Select(i => (double)i).ToArray();
        using var s = Upload(src, 2 * 3, 4);
        using var d = backend.Zeros(2 * 5, 4);
        backend.CopyRows(s, d, batch: 2, destinationStride: 5, destinationOffset: 1);
        var expected = new double[2 * 5 * 4];
        Array.Copy(src, 0, expected, 1 * 4, 12);
        Array.Copy(src, 12, expected, 6 * 4, 12);
        ToleranceFor(1).AssertClose(Download(d), expected, "copy rows");
    }

    private static double[] Random(Random rng, int n, double scale = 2) =>
        Enumerable.Range(0, n).Select(_ => (double)(float)((rng.NextDouble() - 0.5) * scale)).ToArray(); // float-exact, so every backend sees the very inputs the reference does

    private static double[] Strided(double[] rows, int batch, int length, int stride, int width)
    {
        var o = new double[batch * stride * width];
        for (int b = 0; b < batch; b++)
        {
            Array.Copy(rows, b * length * width, o, b * stride * width, length * width);
        }
        return o;
    }

    private Tensor Upload(double[] data, params int[] shape) => backend.Upload(data.Select(x => (float)x).ToArray(), shape);

    private float[] Download(Tensor t)
    {
        var o = new float[t.Length];
        backend.Download(t, o);
        return o;
    }
}
