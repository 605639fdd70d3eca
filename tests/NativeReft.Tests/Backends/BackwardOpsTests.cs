using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Tensors;

namespace NativeReft.Tests.Backends;

/// <summary>
/// Every backward op of the CPU backend against central finite differences of its forward, in float64, on odd
/// shapes. The loss is sum(c * out) for a fixed random upstream gradient c, so dOut = c.
/// </summary>
public sealed class BackwardOpsTests
{
    private CpuBackend<double> cpu = null!;
    private Random rng = null!;

    [SetUp]
    public void Setup()
    {
        cpu = new CpuBackend<double>(threads: 2);
        rng = new Random(17);
    }

    [TearDown]
    public void TearDown() => cpu.Dispose();

    [TestCase(1, 7)]
    [TestCase(3, 33)]
    public void RmsNorm_backward(int rows, int c)
    {
        var x = Random(rows * c);
        var w = Random(c);
        var up = Random(rows * c);
        var dx = new double[x.Length];
        cpu.RmsNormBackward(T(x, rows, c), T(w, c), 1e-5f, T(up, rows, c), T(dx, rows, c));
        GradientCheck.AssertMatches("rmsnorm dx", x, dx, () =>
        {
            var o = new double[x.Length];
            cpu.RmsNorm(T(x, rows, c), T(w, c), 1e-5f, T(o, rows, c));
            return Dot(o, up);
        });
    }

    [TestCase(1, 7, 5)]
    [TestCase(4, 33, 9)]
    public void MatMul_input_gradient(int m, int k, int n)
    {
        var x = Random(m * k);
        var w = Random(n * k);
        var up = Random(m * n);
        var dx = new double[x.Length];
        cpu.MatMulInputGrad(T(up, m, n), T(w, n, k), T(dx, m, k));
        GradientCheck.AssertMatches("matmul dx", x, dx, () =>
        {
            var o = new double[m * n];
            cpu.MatMul(T(x, m, k), T(w, n, k), T(o, m, n));
            return Dot(o, up);
        });
    }

    [Test]
    public void Accumulating_backwards_add_to_what_dX_holds()
    {
        int m = 3, k = 33, n = 9;
        var x = Random(m * k);
        var w = Random(k);
        var up = Random(m * k);
        var prior = Random(m * k);
        var fresh = new double[x.Length];
        var sum = (double[])prior.Clone();
        cpu.RmsNormBackward(T(x, m, k), T(w, k), 1e-5f, T(up, m, k), T(fresh, m, k));
        cpu.RmsNormBackward(T(x, m, k), T(w, k), 1e-5f, T(up, m, k), T(sum, m, k), accumulate: true);
        Assert.That(sum, Is.EqualTo(prior.Zip(fresh, (a, b) => a + b)).Within(1e-12), "rmsnorm dX += ...");

        var weight = Random(n * k);
        var dOut = Random(m * n);
        cpu.MatMulInputGrad(T(dOut, m, n), T(weight, n, k), T(fresh, m, k));
        sum = (double[])prior.Clone();
        cpu.MatMulInputGrad(T(dOut, m, n), T(weight, n, k), T(sum, m, k), accumulate: true);
        Assert.That(sum, Is.EqualTo(prior.Zip(fresh, (a, b) => a + b)).Within(1e-12), "matmul dX += ...");
    }

    [Test]
    public void Rope_backward_is_the_inverse_rotation()
    {
        int rows = 5, heads = 3, hs = 8, half = hs / 2;
        var x = Random(rows * heads * hs);
        var up = Random(x.Length);
        int[] positions = [0, 3, 9, 1, 7];
        var cos = new double[10 * half];
        var sin = new double[10 * half];
        for (int p = 0; p < 10; p++)
        {
            for (int i = 0; i < half; i++)
            {
                cos[p * half + i] = Math.Cos(p / Math.Pow(10000, 2.0 * i / hs));
                sin[p * half + i] = Math.Sin(p / Math.Pow(10000, 2.0 * i / hs));
            }
        }
        var dx = (double[])up.Clone();
        cpu.Rope(T(dx, rows, heads * hs), T(cos, 10, half), T(sin, 10, half), positions, heads, inverse: true);
        GradientCheck.AssertMatches("rope dx", x, dx, () =>
        {
            var o = (double[])x.Clone();
            cpu.Rope(T(o, rows, heads * hs), T(cos, 10, half), T(sin, 10, half), positions, heads);
            return Dot(o, up);
        });
    }

    [TestCase(1, 5, 4, 2, 0, 8, false)]
    [TestCase(2, 7, 2, 1, 0, 4, true)]  // masked keys (left padding)
    [TestCase(1, 3, 2, 2, 2, 4, false)] // queries after 2 cached positions
    public void Attention_backward(int batch, int tq, int heads, int kvHeads, int offset, int hs, bool masked)
    {
        int tk = offset + tq;
        var shape = new AttentionShape(batch, tq, tk, tk, offset, heads, kvHeads, hs);
        var q = Random(batch * tq * heads * hs);
        var k = Random(batch * tk * kvHeads * hs);
        var v = Random(batch * tk * kvHeads * hs);
        var up = Random(q.Length);
        bool[] mask = masked ? Enumerable.Range(0, batch * tk).Select(i => i % tk >= (i / tk == 0 ? 2 : 0)).ToArray() : [];
        var dq = new double[q.Length];
        var dk = new double[k.Length];
        var dv = new double[v.Length];
        cpu.AttentionBackward(T(q, batch * tq, heads * hs), T(k, batch * tk, kvHeads * hs), T(v, batch * tk, kvHeads * hs),
            T(up, batch * tq, heads * hs), T(dq, batch * tq, heads * hs), T(dk, batch * tk, kvHeads * hs), T(dv, batch * tk, kvHeads * hs), shape, mask);
        double Loss()
        {
            var o = new double[q.Length];
            cpu.Attention(T(q, batch * tq, heads * hs), T(k, batch * tk, kvHeads * hs), T(v, batch * tk, kvHeads * hs),
                T(o, batch * tq, heads * hs), shape, mask);
            return Dot(o, up);
        }
        GradientCheck.AssertMatches("attention dq", q, dq, Loss);
        GradientCheck.AssertMatches("attention dk", k, dk, Loss);
        GradientCheck.AssertMatches("attention dv", v, dv, Loss);
    }

    [TestCase(7)]
    [TestCase(33)]
    public void SwiGlu_backward(int n)
    {
        var g = Random(2 * n, 6);
        var u = Random(2 * n);
        var up = Random(2 * n);
        var dg = new double[g.Length];
        var du = new double[u.Length];
        cpu.SwiGluBackward(T(g, 2, n), T(u, 2, n), T(up, 2, n), T(dg, 2, n), T(du, 2, n));
        double Loss()
        {
            var o = new double[g.Length];
            cpu.SwiGlu(T(g, 2, n), T(u, 2, n), T(o, 2, n));
            return Dot(o, up);
        }
        GradientCheck.AssertMatches("swiglu dgate", g, dg, Loss);
        GradientCheck.AssertMatches("swiglu dup", u, du, Loss);
    }

    [Test]
    public void CrossEntropy_gradient_and_ignored_rows()
    {
        int rows = 4, vocab = 11;
        var z = Random(rows * vocab, 8);
        int[] targets = [3, -100, 0, 10];
        var dz = new double[z.Length];
        double loss = cpu.CrossEntropy(T(z, rows, vocab), targets, T(dz, rows, vocab), gradScale: 1);
        double expected = 0;
        foreach (int r in new[] { 0, 2, 3 })
        {
            var row = z.Skip(r * vocab).Take(vocab).ToArray();
            double max = row.Max();
            expected += Math.Log(row.Sum(x => Math.Exp(x - max))) + max - row[targets[r]];
        }
        Assert.That(loss, Is.EqualTo(expected).Within(1e-12));
        Assert.That(dz.Skip(vocab).Take(vocab), Is.All.EqualTo(0.0), "an ignored row has no gradient");
        GradientCheck.AssertMatches("cross-entropy dlogits", z, dz, () =>
            cpu.CrossEntropy(T(z, rows, vocab), targets, T(new double[z.Length], rows, vocab), 1));
    }

    [TestCase(true, true, Activation.Linear, false)]   // LoReFT / NoReFT
    [TestCase(false, true, Activation.Linear, false)]  // DiReFT / DireftIntervention
    [TestCase(true, false, Activation.Linear, false)]  // ConsReFT
    [TestCase(false, false, Activation.Linear, false)] // LobiReFT
    [TestCase(true, true, Activation.Silu, true)]      // with an activation and dropout
    [TestCase(false, true, Activation.Tanh, false)]
    public void Intervention_backward(bool subtract, bool learnedSource, Activation activation, bool dropout)
    {
        int n = 3, d = 9, r = 2;
        var h = Random(n * d);
        var p = Random(r * d);
        var w = Random(r * d);
        var b = Random(r);
        var up = Random(n * d);
        var mask = dropout ? Enumerable.Range(0, n * d).Select(i => i % 3 == 0 ? 0 : 1.5).ToArray() : null;
        InterventionTensors Params(double[] pp, double[] ww, double[] bb) =>
            new(T(pp, r, d), learnedSource ? T(ww, r, d) : null, T(bb, r), subtract, activation);
        var dh = new double[h.Length];
        var dp = new double[p.Length];
        var dw = new double[w.Length];
        var db = new double[b.Length];
        cpu.InterveneBackward(T(h, n, d), Params(p, w, b), T(up, n, d), mask is null ? null : T(mask, n, d), T(dh, n, d), Params(dp, dw, db));
        double Loss()
        {
            var o = new double[h.Length];
            cpu.Intervene(T(h, n, d), Params(p, w, b), T(o, n, d), mask is null ? null : T(mask, n, d));
            return Dot(o, up);
        }
        GradientCheck.AssertMatches("intervention dh", h, dh, Loss);
        GradientCheck.AssertMatches("intervention dP", p, dp, Loss);
        GradientCheck.AssertMatches("intervention db", b, db, Loss);
        if (learnedSource)
        {
            GradientCheck.AssertMatches("intervention dW", w, dw, Loss);
        }
    }

    [Test]
    public void Intervention_parameter_gradients_accumulate()
    {
        int n = 2, d = 5, r = 2;
        var h = Random(n * d);
        var parameters = new InterventionTensors(T(Random(r * d), r, d), T(Random(r * d), r, d), T(Random(r), r), true, Activation.Linear);
        var dp = new double[r * d];
        var grads = new InterventionTensors(T(dp, r, d), T(new double[r * d], r, d), T(new double[r], r), true, Activation.Linear);
        var up = T(Random(n * d), n, d);
        cpu.InterveneBackward(T(h, n, d), parameters, up, null, T(new double[n * d], n, d), grads);
        var once = (double[])dp.Clone();
        cpu.InterveneBackward(T(h, n, d), parameters, up, null, T(new double[n * d], n, d), grads);
        Assert.That(dp, Is.EqualTo(once.Select(x => 2 * x)).Within(1e-12));
    }

    [Test]
    public void OrthonormalizeRows_gives_orthonormal_rows_spanning_the_same_space()
    {
        int r = 4, d = 33;
        var a = Random(r * d);
        var original = (double[])a.Clone();
        cpu.OrthonormalizeRows(T(a, r, d));
        for (int i = 0; i < r; i++)
        {
            for (int j = 0; j < r; j++)
            {
                double dot = Enumerable.Range(0, d).Sum(c => a[i * d + c] * a[j * d + c]);
                Assert.That(dot, Is.EqualTo(i == j ? 1.0 : 0.0).Within(1e-12), $"R R^T [{i},{j}]");
            }
        }
        // Gram-Schmidt keeps the first row's direction.
        double norm = Math.Sqrt(original.Take(d).Sum(x => x * x));
        Assert.That(a.Take(d), Is.EqualTo(original.Take(d).Select(x => x / norm)).Within(1e-12));
    }

    [Test]
    public void AdamW_first_step_moves_each_parameter_by_the_learning_rate()
    {
        // At step 1 the bias-corrected update is lr * g / (|g| + eps) = lr * sign(g), after decay p * (1 - lr wd).
        var p = new[] { 1.0, -2.0, 0.5 };
        var g = new[] { 0.3, -0.1, 2.0 };
        cpu.AdamW(T(p, 3), T(g, 3), T(new double[3], 3), T(new double[3], 3), new AdamWStep(0.01, 0.9, 0.999, 1e-12, 0.1, 1));
        Assert.That(p, Is.EqualTo(new[] { 1 * 0.999 - 0.01, -2 * 0.999 + 0.01, 0.5 * 0.999 - 0.01 }).Within(1e-9));
    }

    private CpuTensor<double> T(double[] data, params int[] shape) => cpu.Wrap(data, shape);

    private double[] Random(int n, double scale = 2) => Enumerable.Range(0, n).Select(_ => (rng.NextDouble() - 0.5) * scale).ToArray();

    private static double Dot(double[] a, double[] b) => a.Zip(b, (x, y) => x * y).Sum();
}
