using NativeReft.Tensors;
using TensorPrimitives = System.Numerics.Tensors.TensorPrimitives;

namespace NativeReft.Backends.Cpu;

public sealed partial class CpuBackend<T>
{
    /// <inheritdoc />
    public void Intervene(Tensor h, InterventionTensors parameters, Tensor output, Tensor? dropoutScale)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var hs = Cast(h);
        var o = Cast(output);
        RequireSameShape(h, output, "intervene");
        CheckIntervention(hs, parameters, dropoutScale);
        int r = parameters.Rank, d = parameters.Dim;
        T[] P = Cast(parameters.P).Data, b = Cast(parameters.B).Data;
        T[]? W = parameters.W is null ? null : Cast(parameters.W).Data;
        T[]? mask = dropoutScale is null ? null : Cast(dropoutScale).Data;
        ParallelChunks(hs.Rows, 6L * r * d, (start, end) =>
        {
            Span<T> delta = stackalloc T[r];
            for (int row = start; row < end; row++)
            {
                Span<T> x = hs.Row(row), y = o.Row(row);
                Source(x, P, W, b, parameters, delta, activationInput: null);
                x.CopyTo(y);
                for (int k = 0; k < r; k++)
                {
                    TensorPrimitives.MultiplyAdd<T>(P.AsSpan(k * d, d), delta[k], y, y); // y += P^T delta
                }
                if (mask is not null)
                {
                    TensorPrimitives.Multiply<T>(y, mask.AsSpan(row * d, d), y);
                }
            }
        });
    }

    /// <inheritdoc />
    public void InterveneBackward(Tensor h, InterventionTensors parameters, Tensor dOut, Tensor? dropoutScale, Tensor dH,
        InterventionTensors gradients)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(gradients);
        var hs = Cast(h);
        RequireSameShape(h, dOut, "intervene backward");
        RequireSameShape(h, dH, "intervene backward");
        CheckIntervention(hs, parameters, dropoutScale);
        int r = parameters.Rank, d = parameters.Dim, n = hs.Rows;
        T[] P = Cast(parameters.P).Data, b = Cast(parameters.B).Data;
        T[]? W = parameters.W is null ? null : Cast(parameters.W).Data;
        T[]? mask = dropoutScale is null ? null : Cast(dropoutScale).Data;
        T[] dy = Cast(dOut).Data, dx = Cast(dH).Data;
        T[] dP = Cast(gradients.P).Data, db = Cast(gradients.B).Data;
        T[]? dW = gradients.W is null ? null : Cast(gradients.W).Data;

        // Rows are independent for dH; parameter gradients are sums over rows, accumulated here in row order on
        // one thread so the result is deterministic (r is small: this is O(n r d) like the forward).
        var delta = new T[r];
        var pre = new T[r];
        var g = new T[d];
        var pg = new T[r];
        var dv = new T[r];
        for (int row = 0; row < n; row++)
        {
            Span<T> x = hs.Row(row);
            Span<T> dxRow = dx.AsSpan(row * d, d);
            dy.AsSpan(row * d, d).CopyTo(g);
            if (mask is not null)
            {
                TensorPrimitives.Multiply<T>(g, mask.AsSpan(row * d, d), g); // through the dropout
            }
            Source(x, P, W, b, parameters, delta, pre);
            g.CopyTo(dxRow); // the identity path
            for (int k = 0; k < r; k++)
            {
                Span<T> pk = P.AsSpan(k * d, d);
                pg[k] = TensorPrimitives.Dot<T>(pk, g); // d(delta) = P g
                Span<T> dpk = dP.AsSpan(k * d, d);
                TensorPrimitives.MultiplyAdd<T>(g, delta[k], dpk, dpk); // from P^T delta: dP += delta g^T
                if (parameters.SubtractProjection)
                {
                    // delta contains -P h: dP -= (P g) h^T and dh -= P^T (P g)
                    TensorPrimitives.MultiplyAdd<T>(x, -pg[k], dpk, dpk);
                    TensorPrimitives.MultiplyAdd<T>(pk, -pg[k], dxRow, dxRow);
                }
                dv[k] = pg[k] * ActivationGrad(parameters.Activation, pre[k]);
                db[k] += dv[k];
                if (W is not null)
                {
                    Span<T> dwk = dW!.AsSpan(k * d, d);
                    TensorPrimitives.MultiplyAdd<T>(x, dv[k], dwk, dwk);                  // dW += dv h^T
                    TensorPrimitives.MultiplyAdd<T>(W.AsSpan(k * d, d), dv[k], dxRow, dxRow); // dh += W^T dv
                }
            }
        }
    }

    // delta = s - [subtract] P x, with s = act(W x + b) or b; `activationInput` receives W x + b (or b).
    private static void Source(ReadOnlySpan<T> x, T[] P, T[]? W, T[] b, InterventionTensors parameters, Span<T> delta, Span<T> activationInput)
    {
        int r = parameters.Rank, d = parameters.Dim;
        for (int k = 0; k < r; k++)
        {
            T v = b[k] + (W is null ? T.Zero : TensorPrimitives.Dot<T>(W.AsSpan(k * d, d), x));
            if (!activationInput.IsEmpty)
            {
                activationInput[k] = v;
            }
            delta[k] = Activate(parameters.Activation, v);
            if (parameters.SubtractProjection)
            {
                delta[k] -= TensorPrimitives.Dot<T>(P.AsSpan(k * d, d), x);
            }
        }
    }

    private static T Activate(Activation activation, T x) => activation switch
    {
        Activation.Linear => x,
        Activation.Relu => T.Max(x, T.Zero),
        Activation.Silu => x / (T.One + T.Exp(-x)),
        Activation.Tanh => T.Tanh(x),
        _ => throw new ArgumentOutOfRangeException(nameof(activation), activation, null),
    };

    private static T ActivationGrad(Activation activation, T x)
    {
        switch (activation)
        {
            case Activation.Linear:
                return T.One;
            case Activation.Relu:
                return x > T.Zero ? T.One : T.Zero;
            case Activation.Silu:
                T s = T.One / (T.One + T.Exp(-x));
                return s * (T.One + x * (T.One - s));
            case Activation.Tanh:
                T t = T.Tanh(x);
                return T.One - t * t;
            default:
                throw new ArgumentOutOfRangeException(nameof(activation), activation, null);
        }
    }

    private void CheckIntervention(CpuTensor<T> h, InterventionTensors p, Tensor? dropoutScale)
    {
        if (p.Dim != h.Columns || p.B.Length != p.Rank || (p.W is not null && (p.W.Rows != p.Rank || p.W.Columns != p.Dim))
            || (dropoutScale is not null && (dropoutScale.Rows != h.Rows || dropoutScale.Columns != h.Columns)))
        {
            throw new ArgumentException($"intervention: h {h.ShapeText}, P {p.P.ShapeText}, W {p.W?.ShapeText ?? "none"}, b {p.B.ShapeText}, dropout {dropoutScale?.ShapeText ?? "none"} do not fit");
        }
        _ = Cast(p.P);
    }
}
