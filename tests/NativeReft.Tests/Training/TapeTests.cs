using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Reft;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>
/// The tape's gradient bookkeeping where one gradient tensor is held by several tensors (a residual add hands its
/// output's gradient to both inputs, with no copy), where backwards add into a gradient in place, and where an
/// intervention edits its input in place: a small graph that reaches each of those cases, its intervention gradients
/// against central finite differences in float64.
/// </summary>
public sealed class TapeTests
{
    private const int Rows = 5, Dim = 8, Rank = 2;

    [Test]
    public void Shared_and_accumulated_gradients_match_finite_differences()
    {
        using var backend = new CpuBackend<double>(threads: 1);
        var rng = new Random(11);
        double[] Random(int n) => Enumerable.Range(0, n).Select(_ => rng.NextDouble() - 0.5).ToArray();
        Tensor Constant(params int[] shape) => backend.Wrap(Random(shape.Aggregate(1, (a, b) => a * b)), shape);
        var interventions = Enumerable.Range(0, 3).Select(layer => new Intervention(backend, InterventionType.LoReft, layer, "test", Rank, Dim,
            Activation.Linear, (_, shape) => Constant(shape))).ToArray();
        var (input, norm, w1, w2, w3) = (Random(Rows * Dim), Constant(Dim), Constant(Dim, Dim), Constant(Dim, Dim), Constant(Dim, Dim));
        int[] gathered = [0, 2, 3, 4]; // rows are independent here (no attention): each intervention edits gathered rows
        var upstream = Random(gathered.Length * Dim);
        int[] positions = [3, 0, 1, 4, 2];
        var angles = Random(Rows * Dim / 4).Select(x => 6 * x).ToArray(); // (position, pair): 2 heads of 4, 2 pairs each
        var (cos, sin) = (backend.Wrap(angles.Select(Math.Cos).ToArray(), Rows, Dim / 4), backend.Wrap(angles.Select(Math.Sin).ToArray(), Rows, Dim / 4));

        double Run(bool backward)
        {
            using var tape = new Tape(backend);
            AppliedIntervention[] At(int i, params int[] rows) => [new AppliedIntervention(interventions[i], rows, null)];
            var h0 = tape.Intervene(tape.Own(backend.Wrap((double[])input.Clone(), Rows, Dim)), At(0, 0, 2, 3)); // in place
            var y = tape.RmsNorm(h0, norm, 1e-5f);
            var o = tape.Residual(y, h0);          // the norm's backward reads the gradient h0 holds: added out of place
            var z = tape.MatMul(o, w3);
            var h1 = tape.Intervene(o, At(1, 2, 4));
            var p = tape.Residual(h1, z);          // h1's only consumer: its gradient is held by z too, so copied
            var k = tape.Residual(p, p);           // one tensor as both inputs
            var q = tape.MatMul(k, w2);
            var v = tape.MatMul(k, w3);
            tape.Rope(v, cos, sin, positions, heads: 2); // in place, on a gradient q holds too: rotated in a copy
            var c = tape.Residual(k, q);
            var a = tape.Residual(k, v);
            var f = tape.Residual(a, c);           // c's backward adds to k's gradient while v holds it: a new one
            var e = tape.MatMul(f, w1);
            var s = tape.Residual(f, e);           // e's GEMM reads the gradient it adds into f's: a new one
            var m1 = tape.MatMul(s, w1);
            var r = tape.ResidualLinear(m1, s, w2); // m1's GEMM then adds into the gradient this one wrote
            var rn = tape.RmsNorm(r, norm, 1e-5f);
            var h2 = tape.Intervene(r, At(2, 3));  // the norm's backward reads r: edited in a copy
            var g = tape.Gather(tape.Residual(h2, rn), gathered);
            if (backward)
            {
                tape.Seed(g, tape.Own(backend.Wrap((double[])upstream.Clone(), gathered.Length, Dim)));
                tape.Backward();
            }
            return backend.Data(g).Zip(upstream, (a, b) => a * b).Sum();
        }

        Run(backward: true); // the gradients start at zero
        foreach (var intervention in interventions)
        {
            foreach (var slot in intervention.Slots())
            {
                double[] gradient = backend.Data(slot.Gradient);
                Assert.That(gradient, Has.Some.Not.EqualTo(0.0), $"{slot.Name} received a gradient");
                GradientCheck.AssertMatches(slot.Name, backend.Data(slot.Parameter), gradient, () => Run(backward: false));
            }
            intervention.Dispose();
        }
    }
}
