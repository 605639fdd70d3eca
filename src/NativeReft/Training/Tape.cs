using NativeReft.Backends;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Tensors;

namespace NativeReft.Training;

/// <summary>
/// Reverse-mode autograd for a frozen model. Each forward op runs on the backend and, when one of its inputs
/// needs a gradient, records a closure holding what its backward needs; <see cref="Backward"/> runs them in
/// reverse. Only activations are differentiated: weights never are, and since nothing needs a gradient before
/// the first intervention, the layers below the lowest intervened layer record nothing.
/// Gradient rule: a backward adds its input gradient (+=) into whatever already arrived for that tensor (the
/// residual stream is read by two ops per layer): a GEMM or RMSNorm backward adds in the same pass
/// (accumulate), other ops write a fresh gradient the tape adds. A residual add hands its output's gradient to
/// both inputs without a copy: a gradient held by several tensors (or read by the running backward) is never
/// written in place; adding to it makes a new one.
/// Memory: a gradient is released as soon as nothing needs it (its op's backward has run and it was not handed on
/// to another tensor, or it was added into another gradient), so the backward pass holds a few gradients at a
/// time, not one per op. The model tells the tape when its forward is done with each activation
/// (<see cref="IForwardOps.Done"/>); the tape frees it then unless a recorded backward reads it. So a recorded layer
/// keeps what its backward reads (the residual stream where a norm reads it, q, k, v, the gate and up projections,
/// the attention output where the backend's attention backward reuses it, <see cref="IBackend.AttentionForBackward"/>)
/// and frees the inputs of its Linear layers and its sublayer outputs (about 40% of its activations); a layer below
/// the lowest intervened one, where nothing is recorded, keeps nothing past its forward. An intervention edits the
/// residual stream in place, so the stream before the edit is not kept beside the stream after it.
/// </summary>
public sealed class Tape : IForwardOps, IDisposable
{
    private readonly IBackend backend;
    private readonly List<Action> steps = [];
    private readonly Dictionary<Tensor, Tensor> gradients = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> tracked = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> readByBackward = new(ReferenceEqualityComparer.Instance);
    private readonly HashSet<Tensor> owned = new(ReferenceEqualityComparer.Instance);
    private Tensor? reading; // the gradient the running backward reads

    /// <summary>A tape whose tensors live on <paramref name="backend"/>.</summary>
    public Tape(IBackend backend) => this.backend = backend ?? throw new ArgumentNullException(nameof(backend));

    /// <inheritdoc cref="IForwardOps.Backend" />
    public IBackend Backend => backend;

    /// <summary>Ops recorded so far.</summary>
    public int RecordedOps => steps.Count;

    /// <summary>Tensors the tape holds now (activations kept, gradients not yet released).</summary>
    internal int HeldTensors => owned.Count;

    /// <summary>A zero tensor owned by the tape (released with it).</summary>
    public Tensor New(params int[] shape)
    {
        var t = backend.Zeros(shape);
        owned.Add(t);
        return t;
    }

    // A tensor owned by the tape for an op to write in full: no zero fill (IBackend.Empty).
    private Tensor Output(params int[] shape)
    {
        var t = backend.Empty(shape);
        owned.Add(t);
        return t;
    }

    /// <summary>Hands <paramref name="t"/> to the tape, which releases it with its own tensors.</summary>
    public Tensor Own(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        owned.Add(t);
        return t;
    }

    /// <summary>Whether a gradient flows to <paramref name="t"/>.</summary>
    public bool Tracks(Tensor t) => tracked.Contains(t);

    /// <summary>Sets the gradient arriving at <paramref name="t"/> (e.g. dLoss/dLogits) before <see cref="Backward"/>.</summary>
    public void Seed(Tensor t, Tensor gradient) => Accumulate(t, gradient);

    /// <summary>Runs every recorded backward in reverse order, then forgets them.</summary>
    public void Backward()
    {
        for (int i = steps.Count - 1; i >= 0; i--)
        {
            steps[i]();
        }
        foreach (var gradient in gradients.Values)
        {
            Release(gradient); // gradients that reached a tensor with no recorded producer (the tape's inputs)
        }
        steps.Clear();
        gradients.Clear();
    }

    /// <inheritdoc />
    Tensor IForwardOps.Input(int rows, int dim) => Output(rows, dim);

    /// <inheritdoc />
    Tensor IForwardOps.RmsNorm(Tensor x, Tensor weight, float eps, Slot slot) => RmsNorm(x, weight, eps);

    /// <summary>rmsnorm(x) * weight.</summary>
    public Tensor RmsNorm(Tensor x, Tensor weight, float eps)
    {
        var y = Output(x.Shape.ToArray());
        backend.RmsNorm(x, weight, eps, y);
        RecordRmsNorm(x, weight, eps, y);
        return y;
    }

    /// <inheritdoc />
    (Tensor Sum, Tensor Norm) IForwardOps.ResidualRmsNorm(Tensor x, Tensor branch, Tensor weight, float eps, Slot slot)
    {
        ArgumentNullException.ThrowIfNull(x);
        var sum = Output(x.Shape.ToArray());
        var norm = Output(x.Shape.ToArray());
        backend.AddRmsNorm(x, branch, weight, eps, sum, norm); // one pass; the backward is the two ops' backwards
        RecordResidual(x, branch, sum);
        RecordRmsNorm(sum, weight, eps, norm);
        return (sum, norm);
    }

    /// <inheritdoc />
    Tensor IForwardOps.MatMul(Tensor x, Tensor weight, Slot slot) => MatMul(x, weight);

    /// <summary>x weight^T.</summary>
    public Tensor MatMul(Tensor x, Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var y = Output(x.Rows, weight.Rows);
        backend.MatMul(x, weight, y);
        RecordIfTracked(y, [x], [], dy => MatMulBackward(dy, weight, x));
        return y;
    }

    /// <inheritdoc />
    public void Rope(Tensor x, Tensor cos, Tensor sin, int[] positions, int heads)
    {
        ArgumentNullException.ThrowIfNull(x);
        backend.Rope(x, cos, sin, positions, heads);
        if (Tracks(x))
        {
            // In place: the gradient arriving at x is for the rotated values; rotating it back gives the
            // gradient of the values before, which the producer of x then takes.
            steps.Add(() =>
            {
                if (gradients.Remove(x, out var dx))
                {
                    dx = ForWriting(dx);
                    backend.Rope(dx, cos, sin, positions, heads, inverse: true);
                    gradients[x] = dx;
                }
            });
        }
    }

    /// <inheritdoc />
    public Tensor Attention(Tensor q, Tensor k, Tensor v, AttentionShape shape, bool[]? keyMask)
    {
        ArgumentNullException.ThrowIfNull(q);
        var o = Output(q.Shape.ToArray());
        // What the backend's backward can reuse (a GPU's softmax statistics; then the output is kept too).
        Tensor? saved = null;
        if (Tracks(q) || Tracks(k) || Tracks(v))
        {
            saved = backend.AttentionForBackward(q, k, v, o, shape, keyMask);
            if (saved is not null)
            {
                Own(saved);
            }
        }
        else
        {
            backend.Attention(q, k, v, o, shape, keyMask);
        }
        RecordIfTracked(o, [q, k, v], saved is null ? [q, k, v] : [q, k, v, o], dO =>
        {
            var (dq, dk, dv) = (Output(q.Shape.ToArray()), Output(k.Shape.ToArray()), Output(v.Shape.ToArray()));
            backend.AttentionBackward(q, k, v, o, saved, dO, dq, dk, dv, shape, keyMask);
            AccumulateIfTracked(q, dq);
            AccumulateIfTracked(k, dk);
            AccumulateIfTracked(v, dv);
        });
        return o;
    }

    /// <inheritdoc />
    public Tensor SwiGlu(Tensor gate, Tensor up)
    {
        ArgumentNullException.ThrowIfNull(gate);
        var o = Output(gate.Shape.ToArray());
        backend.SwiGlu(gate, up, o);
        RecordIfTracked(o, [gate, up], [gate, up], dO =>
        {
            var (dGate, dUp) = (Output(gate.Shape.ToArray()), Output(up.Shape.ToArray()));
            backend.SwiGluBackward(gate, up, dO, dGate, dUp);
            AccumulateIfTracked(gate, dGate);
            AccumulateIfTracked(up, dUp);
        });
        return o;
    }

    /// <inheritdoc />
    public Tensor ResidualLinear(Tensor x, Tensor input, Tensor weight)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(weight);
        var o = Output(x.Shape.ToArray());
        backend.MatMulAdd(input, weight, x, o); // out of place: the tape keeps x
        RecordIfTracked(o, [x, input], [], dO =>
        {
            AccumulateIfTracked(x, dO);
            if (Tracks(input))
            {
                MatMulBackward(dO, weight, input);
            }
        });
        return o;
    }

    /// <summary>x + branch (a residual add).</summary>
    public Tensor Residual(Tensor x, Tensor branch)
    {
        ArgumentNullException.ThrowIfNull(x);
        var o = Output(x.Shape.ToArray());
        backend.Add(x, branch, o);
        RecordResidual(x, branch, o);
        return o;
    }

    // x's gradient += dy weight (a Linear layer's input gradient), added in the GEMM where the tape may.
    private void MatMulBackward(Tensor dy, Tensor weight, Tensor x) =>
        AccumulateFrom(x, (dx, add) => backend.MatMulInputGrad(dy, weight, dx, add));

    private void RecordRmsNorm(Tensor x, Tensor weight, float eps, Tensor y) =>
        RecordIfTracked(y, [x], [x], dy => AccumulateFrom(x, (dx, add) => backend.RmsNormBackward(x, weight, eps, dy, dx, add)));

    // d(x + branch) is dO for both: one tensor, held by both (see Accumulate).
    private void RecordResidual(Tensor x, Tensor branch, Tensor o) =>
        RecordIfTracked(o, [x, branch], [], dO =>
        {
            AccumulateIfTracked(branch, dO);
            AccumulateIfTracked(x, dO);
        });

    /// <summary>The rows <paramref name="rows"/> of x (a gather).</summary>
    public Tensor Gather(Tensor x, int[] rows)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(rows);
        var y = Output(rows.Length, x.Columns);
        backend.GatherRows(x, rows, y);
        RecordIfTracked(y, [x], [], dy => AccumulateFrom(x, (dx, _) => backend.ScatterAddRows(dy, rows, dx), zeroed: true)); // += either way
        return y;
    }

    /// <inheritdoc />
    void IForwardOps.Done(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (!readByBackward.Contains(t))
        {
            Release(t);
        }
    }

    /// <inheritdoc />
    public Tensor Intervene(Tensor x, IReadOnlyList<AppliedIntervention> interventions)
    {
        ArgumentNullException.ThrowIfNull(x);
        ArgumentNullException.ThrowIfNull(interventions);
        // x is edited in place (as Rope is) unless a recorded backward reads its values: ops that read x before
        // the edit record their backwards earlier, so they run after this one, once x's slot holds dx again.
        bool inputTracked = Tracks(x);
        var output = x;
        if (readByBackward.Contains(x))
        {
            output = Output(x.Shape.ToArray());
            backend.Copy(x, output);
        }
        var inputs = interventions.Select(applied =>
        {
            var h = Output(applied.Rows.Length, x.Columns);
            backend.GatherRows(x, applied.Rows, h); // every row read before any is overwritten
            return h;
        }).ToArray();
        for (int i = 0; i < interventions.Count; i++)
        {
            var applied = interventions[i];
            var edited = Output(inputs[i].Shape.ToArray());
            backend.Intervene(inputs[i], applied.Intervention.Parameters, edited, applied.DropoutScale);
            backend.ScatterRows(edited, applied.Rows, output);
            Release(edited);
        }
        // The parameters always need gradients, so the output is tracked even when x is not (the lowest layer).
        tracked.Add(output);
        steps.Add(() =>
        {
            if (!gradients.Remove(output, out var dOut))
            {
                return;
            }
            // Every edited row's gradient is gathered before any is overwritten, so dOut itself becomes dx (rows
            // not edited pass their gradient straight through) unless another tensor holds it too.
            var dEdited = new Tensor[interventions.Count];
            for (int i = 0; i < interventions.Count; i++)
            {
                dEdited[i] = Output(inputs[i].Shape.ToArray());
                backend.GatherRows(dOut, interventions[i].Rows, dEdited[i]);
            }
            var dx = inputTracked ? ForWriting(dOut) : null;
            for (int i = 0; i < interventions.Count; i++)
            {
                var applied = interventions[i];
                var dh = Output(inputs[i].Shape.ToArray());
                backend.InterveneBackward(inputs[i], applied.Intervention.Parameters, dEdited[i], applied.DropoutScale, dh, applied.Intervention.Gradients);
                if (dx is not null)
                {
                    backend.ScatterRows(dh, applied.Rows, dx);
                }
                Release(dEdited[i]);
                Release(dh);
            }
            if (dx is not null)
            {
                Accumulate(x, dx);
            }
            ReleaseIfUnused(dOut);
        });
        return output;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in owned)
        {
            t.Dispose();
        }
        owned.Clear();
        steps.Clear();
        gradients.Clear();
        tracked.Clear();
        readByBackward.Clear();
    }

    // A gradient the tape made that no tensor's slot holds any more, and the running backward does not read: back
    // to the backend's memory now.
    private void ReleaseIfUnused(Tensor gradient)
    {
        if (Writable(gradient, 0)) // no slot holds it and no backward reads it
        {
            Release(gradient);
        }
    }

    // How many tensors' slots hold this gradient (a residual add's is held by both its inputs).
    private int Holders(Tensor gradient)
    {
        int count = 0;
        foreach (var held in gradients.Values)
        {
            if (ReferenceEquals(held, gradient))
            {
                count++;
            }
        }
        return count;
    }

    // A gradient taken out of its slot that a step is about to write in place: itself, unless another slot holds it
    // (then a copy).
    private Tensor ForWriting(Tensor gradient)
    {
        if (Writable(gradient, 0))
        {
            return gradient;
        }
        var copy = Output(gradient.Shape.ToArray());
        backend.Copy(gradient, copy);
        return copy;
    }

    // Whether the tape may write into this gradient: held by `slots` slots at most and not being read.
    private bool Writable(Tensor gradient, int slots) => Holders(gradient) <= slots && !ReferenceEquals(gradient, reading);

    private void Release(Tensor t)
    {
        if (owned.Remove(t))
        {
            t.Dispose();
        }
    }

    // Records `backward` (called with the output's gradient) if any input needs a gradient; marks the output, and
    // the tensors whose values the backward reads (kept even when the model is done with them).
    private void RecordIfTracked(Tensor output, Tensor[] inputs, Tensor[] reads, Action<Tensor> backward)
    {
        if (!inputs.Any(Tracks))
        {
            return;
        }
        tracked.Add(output);
        readByBackward.UnionWith(reads);
        steps.Add(() =>
        {
            if (gradients.Remove(output, out var gradient))
            {
                reading = gradient;
                backward(gradient);
                reading = null;
                ReleaseIfUnused(gradient);
            }
        });
    }

    private void AccumulateIfTracked(Tensor t, Tensor gradient)
    {
        if (Tracks(t))
        {
            Accumulate(t, gradient);
        }
        else
        {
            ReleaseIfUnused(gradient);
        }
    }

    // t's gradient += gradient: in place where one of the two is the tape's alone, else into a new tensor.
    private void Accumulate(Tensor t, Tensor gradient)
    {
        if (!gradients.TryGetValue(t, out var existing))
        {
            gradients[t] = gradient;
            return;
        }
        var sum = Writable(existing, 1) ? existing : Writable(gradient, 0) ? gradient : Output(existing.Shape.ToArray());
        backend.Add(existing, gradient, sum);
        gradients[t] = sum;
        ReleaseIfUnused(existing);
        ReleaseIfUnused(gradient);
    }

    // t's gradient += what `write` computes: written straight into the gradient t holds when the tape may (write's
    // flag true: add to it), else into a fresh tensor (flag false; zero-filled when `zeroed`) that Accumulate adds.
    private void AccumulateFrom(Tensor t, Action<Tensor, bool> write, bool zeroed = false)
    {
        if (gradients.TryGetValue(t, out var existing) && Writable(existing, 1))
        {
            write(existing, true);
            return;
        }
        var fresh = zeroed ? New(t.Shape.ToArray()) : Output(t.Shape.ToArray());
        write(fresh, false);
        Accumulate(t, fresh);
    }
}
