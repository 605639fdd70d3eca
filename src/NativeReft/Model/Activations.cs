using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>
/// The forward pass's working tensors for one row count, kept between calls so a decode step allocates nothing
/// (a fresh set per token was measurable GC work at 15M-model sizes).
/// </summary>
internal sealed class Activations : IDisposable
{
    public Activations(IBackend backend, LlamaConfig c, int rows)
    {
        Rows = rows;
        X = backend.Zeros(rows, c.Dim);
        Norm = backend.Zeros(rows, c.Dim);
        Q = backend.Zeros(rows, c.QDim);
        K = backend.Zeros(rows, c.KvDim);
        V = backend.Zeros(rows, c.KvDim);
        Attention = backend.Zeros(rows, c.QDim);
        Projected = backend.Zeros(rows, c.Dim);
        Gate = backend.Zeros(rows, c.HiddenDim);
        Up = backend.Zeros(rows, c.HiddenDim);
    }

    public int Rows { get; }
    public Tensor X { get; }          // (rows, dim) the residual stream
    public Tensor Norm { get; }       // (rows, dim) rmsnorm(x)
    public Tensor Q { get; }          // (rows, heads * headSize)
    public Tensor K { get; }          // (rows, kvHeads * headSize)
    public Tensor V { get; }          // (rows, kvHeads * headSize)
    public Tensor Attention { get; }  // (rows, heads * headSize)
    public Tensor Projected { get; }  // (rows, dim) a branch's output before the residual add
    public Tensor Gate { get; }       // (rows, hidden), then silu(gate) * up
    public Tensor Up { get; }         // (rows, hidden)

    public void Dispose()
    {
        foreach (var t in new[] { X, Norm, Q, K, V, Attention, Projected, Gate, Up })
        {
            t.Dispose();
        }
    }
}
