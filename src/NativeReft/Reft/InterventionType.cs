using NativeReft.Backends;

namespace NativeReft.Reft;

/// <summary>
/// The pyreft intervention family, each an instance of Phi(h) = h + P^T (s - [subtract] P h) (see
/// <see cref="InterventionTensors"/>): which P is orthonormal, whether the source s is learned (W h + b) or a
/// constant b, and whether P h is subtracted.
/// </summary>
public enum InterventionType
{
    /// <summary>LoReFT: h + R^T (W h + b - R h), R orthonormal.</summary>
    LoReft,
    /// <summary>DiReFT as pyreft's NodireftIntervention: h + W2^T (W1 h + b), no orthogonality.</summary>
    DiReft,
    /// <summary>NoReFT: h + W2^T (W1 h + b - W2 h), no orthogonality.</summary>
    NoReft,
    /// <summary>ConsReFT: h + R^T (b - R h), R orthonormal.</summary>
    ConsReft,
    /// <summary>LobiReFT: h + R^T b, R orthonormal.</summary>
    LobiReft,
    /// <summary>pyreft's DireftIntervention: h + R^T (W h + b), R orthonormal.</summary>
    DiReftOrtho,
}

/// <summary>Names and structure of <see cref="InterventionType"/>.</summary>
public static class InterventionTypes
{
    private static readonly (InterventionType Type, string Name)[] Names =
    [
        (InterventionType.LoReft, "loreft"), (InterventionType.DiReft, "direft"), (InterventionType.NoReft, "noreft"),
        (InterventionType.ConsReft, "consreft"), (InterventionType.LobiReft, "lobireft"), (InterventionType.DiReftOrtho, "direft-ortho"),
    ];

    /// <summary>Every CLI name, for help text and errors.</summary>
    public static string AllNames => string.Join("|", Names.Select(n => n.Name));

    /// <summary>The CLI name, e.g. "loreft".</summary>
    public static string Name(this InterventionType type) => Names.First(n => n.Type == type).Name;

    /// <summary>Parses a CLI name; an unknown one is an <see cref="InputException"/> listing the valid names.</summary>
    public static InterventionType Parse(string name)
    {
        foreach (var (type, n) in Names)
        {
            if (string.Equals(n, name, StringComparison.OrdinalIgnoreCase))
            {
                return type;
            }
        }
        throw new InputException($"unknown intervention type '{name}' (expected one of {AllNames})");
    }

    /// <summary>P is kept with orthonormal rows (retracted after every step).</summary>
    public static bool HasOrthonormalProjection(this InterventionType type) =>
        type is InterventionType.LoReft or InterventionType.ConsReft or InterventionType.LobiReft or InterventionType.DiReftOrtho;

    /// <summary>The source is W h + b (else the constant b).</summary>
    public static bool HasLearnedSource(this InterventionType type) =>
        type is InterventionType.LoReft or InterventionType.DiReft or InterventionType.NoReft or InterventionType.DiReftOrtho;

    /// <summary>P h is subtracted from the source.</summary>
    public static bool SubtractsProjection(this InterventionType type) =>
        type is InterventionType.LoReft or InterventionType.NoReft or InterventionType.ConsReft;
}
