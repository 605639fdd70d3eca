using NativeReft.Backends;
using NativeReft.Reft;
using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>
/// Forward ops for inference: outputs go to per-slot working tensors kept between calls, the residual add and
/// the interventions write in place, and nothing is recorded. A decode step allocates no activations.
/// </summary>
internal sealed class InferenceOps(IBackend backend, LlamaConfig config) : IForwardOps, IDisposable
{
    private Activations? buffers;

    public IBackend Backend => backend;

    public Tensor Input(int rows, int dim)
    {
        if (buffers?.Rows != rows)
        {
            buffers?.Dispose();
            buffers = new Activations(backend, config, rows);
        }
        return buffers.X;
    }

    public Tensor RmsNorm(Tensor x, Tensor weight, float eps, Slot slot)
    {
        var y = Buffer(slot);
        backend.RmsNorm(x, weight, eps, y);
        return y;
    }

    public Tensor MatMul(Tensor x, Tensor weight, Slot slot)
    {
        var y = Buffer(slot);
        backend.MatMul(x, weight, y);
        return y;
    }

    public void Rope(Tensor x, Tensor cos, Tensor sin, int[] positions, int heads) => backend.Rope(x, cos, sin, positions, heads);

    public Tensor Attention(Tensor q, Tensor k, Tensor v, AttentionShape shape, bool[]? keyMask)
    {
        var y = Buffer(Slot.Attention);
        backend.Attention(q, k, v, y, shape, keyMask);
        return y;
    }

    public Tensor SwiGlu(Tensor gate, Tensor up)
    {
        backend.SwiGlu(gate, up, gate);
        return gate;
    }

    public (Tensor Sum, Tensor Norm) ResidualRmsNorm(Tensor x, Tensor branch, Tensor weight, float eps, Slot slot)
    {
        var y = Buffer(slot);
        backend.AddRmsNorm(x, branch, weight, eps, x, y);
        return (x, y);
    }

    public Tensor ResidualLinear(Tensor x, Tensor input, Tensor weight)
    {
        backend.MatMulAdd(input, weight, x, x);
        return x;
    }

    public void Done(Tensor t)
    {
        // Slot buffers are reused by the next layer: nothing to free.
    }

    public Tensor Intervene(Tensor x, IReadOnlyList<AppliedIntervention> interventions)
    {
        foreach (var applied in interventions)
        {
            using var rows = backend.Zeros(applied.Rows.Length, x.Columns);
            backend.GatherRows(x, applied.Rows, rows);
            backend.Intervene(rows, applied.Intervention.Parameters, rows, null); // row-wise: in place is safe
            backend.ScatterRows(rows, applied.Rows, x);
        }
        return x;
    }

    public void Dispose() => buffers?.Dispose();

    private Tensor Buffer(Slot slot)
    {
        var b = buffers ?? throw new InvalidOperationException("Input must be called first");
        return slot switch
        {
            Slot.Norm => b.Norm,
            Slot.Q => b.Q,
            Slot.K => b.K,
            Slot.V => b.V,
            Slot.Attention => b.Attention,
            Slot.Projected => b.Projected,
            Slot.Gate => b.Gate,
            Slot.Up => b.Up,
            _ => throw new ArgumentOutOfRangeException(nameof(slot), slot, null),
        };
    }
}
