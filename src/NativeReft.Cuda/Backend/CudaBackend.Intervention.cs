using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Intervene(Tensor h, InterventionTensors parameters, Tensor output, Tensor? dropoutScale)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        var (x, o) = (Cast(h), Cast(output));
        using var op = Op("intervention", OpWork.Intervention(x.Rows, x.Columns, ParameterCount(parameters), backward: false));
        RequireSameShape(x, o, "intervene");
        intervention.Forward(x.BFloat16, default, x.Rows, x.Columns, Parameters(parameters), Dropout(dropoutScale, x), o.BFloat16,
            savedInput: default, errorFlag.View, Stream);
    }

    /// <inheritdoc />
    public void InterveneBackward(Tensor h, InterventionTensors parameters, Tensor dOut, Tensor? dropoutScale, Tensor dH,
        InterventionTensors gradients)
    {
        ArgumentNullException.ThrowIfNull(parameters);
        ArgumentNullException.ThrowIfNull(gradients);
        var (x, dy, dx) = (Cast(h), Cast(dOut), Cast(dH));
        using var op = Op("intervention backward", OpWork.Intervention(x.Rows, x.Columns, ParameterCount(parameters), backward: true));
        RequireSameShape(x, dy, "intervene backward");
        RequireSameShape(x, dx, "intervene backward");
        using var scratch = new DeviceBuffer<float>(Runtime, InterventionKernels.BackwardScratchLength(x.Rows, parameters.Rank));
        intervention.Backward(x.BFloat16, default, x.Rows, x.Columns, Parameters(parameters), dy.BFloat16, Dropout(dropoutScale, x),
            dx.BFloat16, Parameters(gradients), scratch.View, errorFlag.View, Stream);
    }

    private static long ParameterCount(InterventionTensors t) => t.P.Length + (t.W?.Length ?? 0) + t.B.Length;

    private InterventionParameters Parameters(InterventionTensors t) =>
        new(Cast(t.P).Float, t.W is null ? default : Cast(t.W).Float, Cast(t.B).Float, t.Rank, t.SubtractProjection, t.Activation);

    private DeviceView<float> Dropout(Tensor? scale, CudaTensor h)
    {
        if (scale is null)
        {
            return default;
        }
        var s = Cast(scale);
        RequireSameShape(s, h, "intervene: dropout scale");
        return s.Float;
    }
}
