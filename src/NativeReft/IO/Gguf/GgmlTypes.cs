using NativeReft.Tensors;

namespace NativeReft.IO.Gguf;

/// <summary>
/// ggml's tensor type numbers (<c>enum ggml_type</c> in ggml.h). Only F32, F16 and BF16 are loaded; the rest are
/// named so an error can say which quantization a file uses.
/// </summary>
internal static class GgmlTypes
{
    public const uint F32 = 0;
    public const uint F16 = 1;
    public const uint BF16 = 30;

    // Includes numbers ggml has since retired (Q4_2, Q4_0_4_4, ...): old files still carry them.
    private static readonly Dictionary<uint, string> Names = new()
    {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [4] = "Q4_2", [5] = "Q4_3", [6] = "Q5_0",
        [7] = "Q5_1", [8] = "Q8_0", [9] = "Q8_1", [10] = "Q2_K", [11] = "Q3_K", [12] = "Q4_K", [13] = "Q5_K",
        [14] = "Q6_K", [15] = "Q8_K", [16] = "IQ2_XXS", [17] = "IQ2_XS", [18] = "IQ3_XXS", [19] = "IQ1_S",
        [20] = "IQ4_NL", [21] = "IQ3_S", [22] = "IQ2_S", [23] = "IQ4_XS", [24] = "I8", [25] = "I16", [26] = "I32",
        [27] = "I64", [28] = "F64", [29] = "IQ1_M", [30] = "BF16", [31] = "Q4_0_4_4", [32] = "Q4_0_4_8",
        [33] = "Q4_0_8_8", [34] = "TQ1_0", [35] = "TQ2_0", [36] = "IQ4_NL_4_4", [37] = "IQ4_NL_4_8",
        [38] = "IQ4_NL_8_8", [39] = "MXFP4",
    };

    /// <summary>ggml's name for <paramref name="type"/>, or null for a number ggml never used.</summary>
    public static string? Name(uint type) => Names.GetValueOrDefault(type);

    /// <summary>The element type of a loadable ggml type, or null.</summary>
    public static DType? ToDType(uint type) => type switch
    {
        F32 => DType.F32,
        F16 => DType.F16,
        BF16 => DType.BF16,
        _ => null,
    };

    /// <summary>The ggml number of a DType the writer can store.</summary>
    public static uint FromDType(DType type) => type switch
    {
        DType.F32 => F32,
        DType.F16 => F16,
        DType.BF16 => BF16,
        _ => throw new ArgumentOutOfRangeException(nameof(type), type, "GGUF stores F32, F16 or BF16 here"),
    };

    /// <summary>Why a tensor of <paramref name="type"/> cannot be loaded (type is not loadable).</summary>
    public static string Unsupported(string tensor, uint type)
    {
        if (Name(type) is not { } name)
        {
            return $"tensor '{tensor}' has unknown ggml type {type}";
        }
        // Integer and F64 tensors are not quantized, so "use an unquantized GGUF" would mislead.
        bool quantized = type is not (24 or 25 or 26 or 27 or 28);
        return $"tensor '{tensor}' has ggml type {name} ({type}), which is not supported (supported: F32, F16, BF16)"
            + (quantized ? "; use an unquantized GGUF" : "");
    }
}
