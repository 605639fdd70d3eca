using System.Reflection;
using System.Runtime.InteropServices;
using System.Text;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Headers;

/// <summary>
/// How a value crosses the x86-64 C ABI: its width, whether it travels in a floating-point register, and for a
/// pointer the width of what it points at (0 where that is unknown: void*, an opaque handle, an nint).
/// </summary>
internal readonly record struct AbiValue(int Size, bool Floating, int Pointee)
{
    public override string ToString() => $"{Size}{(Floating ? "f" : "")}{(Pointee > 0 ? $"->{Pointee}" : "")}";

    /// <summary>Same width and register class; pointees compared only where both sides know them.</summary>
    public bool Matches(AbiValue header) =>
        Size == header.Size && Floating == header.Floating && (Pointee == 0 || header.Pointee == 0 || Pointee == header.Pointee);
}

/// <summary>One [LibraryImport] entry point: the symbol it binds and the C ABI of its return value and parameters.</summary>
internal sealed record EntryPoint(string Library, string Symbol, string Method, AbiValue Return, AbiValue[] Parameters);

/// <summary>A named C constant and the value our interop gives it.</summary>
internal sealed record HeaderConstant(string Name, long Value, string Source);

/// <summary>A struct our interop lays out by hand, with the header type and fields it mirrors.</summary>
internal sealed record MirroredStruct(Type Type, string HeaderType, (string Field, string HeaderField)[] Fields);

/// <summary>
/// Reads NativeReft's CUDA interop (Interop.CudaDriver, Cublas, CublasLt, Nvrtc) by reflection, so the header
/// check covers every declaration there is, including ones added later, without a second list to keep in step.
/// </summary>
internal static class InteropDeclarations
{
    /// <summary>The interop classes that bind NVIDIA's libraries (the emulator's ABI is ours and is tested by CI).</summary>
    public static readonly Type[] BindingClasses =
        [typeof(Interop.CudaDriver), typeof(Interop.Cublas), typeof(Interop.CublasLt), typeof(Interop.Nvrtc)];

    /// <summary>Every [LibraryImport] method of <see cref="BindingClasses"/>, with its attribute.</summary>
    public static IEnumerable<(MethodInfo Method, LibraryImportAttribute Import)> Imports() =>
        from type in BindingClasses
        from method in type.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
        let import = method.GetCustomAttribute<LibraryImportAttribute>()
        where import is not null
        select (method, import);

    /// <summary>Every entry point, by symbol (read once: the tests ask for it again and again).</summary>
    public static readonly IReadOnlyList<EntryPoint> EntryPoints = Imports()
        .Select(i => new EntryPoint(
            i.Import.LibraryName,
            i.Import.EntryPoint ?? i.Method.Name,
            $"{i.Method.DeclaringType!.Name}.{i.Method.Name}",
            Abi(i.Method.ReturnType),
            i.Method.GetParameters().Select(p => Abi(p.ParameterType)).ToArray()))
        .OrderBy(entry => entry.Symbol, StringComparer.Ordinal)
        .ToList();

    /// <summary>The C ABI of a managed parameter or return type as LibraryImport marshals it (blittable only).</summary>
    public static AbiValue Abi(Type type)
    {
        if (type == typeof(void))
        {
            return new AbiValue(0, false, 0);
        }
        if (type.IsByRef || type.IsPointer)
        {
            var element = type.GetElementType()!;
            return new AbiValue(IntPtr.Size, false, element == typeof(void) || element == typeof(nint) ? 0 : Width(element));
        }
        if (type == typeof(string))
        {
            return new AbiValue(IntPtr.Size, false, 1); // marshalled as a UTF-8 char*
        }
        return new AbiValue(Width(type), type == typeof(float) || type == typeof(double), 0);
    }

    private static int Width(Type type) => type switch
    {
        _ when type.IsPointer => IntPtr.Size,
        _ when type.IsEnum => Marshal.SizeOf(Enum.GetUnderlyingType(type)),
        _ when type == typeof(nint) || type == typeof(nuint) => IntPtr.Size,
        _ => Marshal.SizeOf(type),
    };

    /// <summary>
    /// Every enum value and flag our interop passes to or reads from the libraries, under its header name. Status
    /// codes take the name from our error tables (so those are checked too); other enums map by a per-type prefix
    /// and the member name in SCREAMING_SNAKE_CASE, with the few exceptions the headers spell differently.
    /// </summary>
    public static IReadOnlyList<HeaderConstant> Constants()
    {
        var constants = new List<HeaderConstant>();
        void AddEnum<T>(Func<T, string> headerName) where T : struct, Enum
        {
            foreach (var value in Enum.GetValues<T>())
            {
                constants.Add(new HeaderConstant(headerName(value), Convert.ToInt64(value), $"{typeof(T).Name}.{value}"));
            }
        }
        string Prefixed<T>(string prefix, T value) where T : struct, Enum =>
            SpelledDifferently.TryGetValue($"{typeof(T).Name}.{value}", out string? name) ? name : prefix + ScreamingSnake(value.ToString());

        AddEnum<Interop.CuResult>(value => Interop.ErrorTable.Describe(value).Name);
        AddEnum<Interop.CublasStatus>(value => Interop.ErrorTable.Describe(value).Name);
        AddEnum<Interop.NvrtcResult>(Interop.ErrorTable.Name);
        AddEnum<Interop.CuDeviceAttribute>(value => Prefixed("CU_DEVICE_ATTRIBUTE_", value));
        AddEnum<Interop.CuFunctionAttribute>(value => Prefixed("CU_FUNC_ATTRIBUTE_", value));
        AddEnum<Interop.CuStreamCaptureMode>(value => Prefixed("CU_STREAM_CAPTURE_MODE_", value));
        AddEnum<Interop.CublasOperation>(value => Prefixed("CUBLAS_OP_", value));
        AddEnum<Interop.CublasComputeType>(value => Prefixed("CUBLAS_", value));
        AddEnum<Interop.CublasGemmAlgorithm>(value => Prefixed("CUBLAS_GEMM_", value));
        AddEnum<Interop.CudaDataType>(value => Prefixed("CUDA_", value));
        AddEnum<Interop.LibraryProperty>(value => Prefixed("", value));
        AddEnum<Interop.LtMatmulDescAttribute>(value => Prefixed("CUBLASLT_MATMUL_DESC_", value));
        AddEnum<Interop.LtPreferenceAttribute>(value => Prefixed("CUBLASLT_MATMUL_PREF_", value));
        AddEnum<MatmulEpilogue>(value => Prefixed("CUBLASLT_EPILOGUE_", value)); // public, outside Interop, passed as is
        foreach (var field in typeof(Interop.CuFlags).GetFields(BindingFlags.Static | BindingFlags.Public).Where(f => f.IsLiteral))
        {
            constants.Add(new HeaderConstant("CU_" + ScreamingSnake(field.Name), Convert.ToInt64(field.GetRawConstantValue()), $"CuFlags.{field.Name}"));
        }
        return constants;
    }

    /// <summary>
    /// Constants our tables name that CUDA 11.8's headers do not have yet, with the version that added them: checked
    /// only against headers of that version or later.
    /// </summary>
    public static readonly Dictionary<string, Version> NewerThan118 = new()
    {
        ["NVRTC_ERROR_TIME_FILE_WRITE_FAILED"] = new Version(12, 0),
    };

    /// <summary>The enums <see cref="Constants"/> covers; a new interop enum must be added there.</summary>
    public static readonly Type[] CoveredEnums =
    [
        typeof(Interop.CuResult), typeof(Interop.CublasStatus), typeof(Interop.NvrtcResult), typeof(Interop.CuDeviceAttribute),
        typeof(Interop.CuFunctionAttribute), typeof(Interop.CuStreamCaptureMode), typeof(Interop.CublasOperation),
        typeof(Interop.CublasComputeType), typeof(Interop.CublasGemmAlgorithm), typeof(Interop.CudaDataType),
        typeof(Interop.LibraryProperty), typeof(Interop.LtMatmulDescAttribute), typeof(Interop.LtPreferenceAttribute),
        typeof(MatmulEpilogue),
    ];

    /// <summary>Names the headers do not spell as prefix + SCREAMING_SNAKE_CASE of our member name.</summary>
    private static readonly Dictionary<string, string> SpelledDifferently = new()
    {
        ["CublasOperation.None"] = "CUBLAS_OP_N",
        ["CublasOperation.Transpose"] = "CUBLAS_OP_T",
        ["LtMatmulDescAttribute.TransA"] = "CUBLASLT_MATMUL_DESC_TRANSA",
        ["LtMatmulDescAttribute.TransB"] = "CUBLASLT_MATMUL_DESC_TRANSB",
        ["MatmulEpilogue.None"] = "CUBLASLT_EPILOGUE_DEFAULT",
        ["CudaDataType.R32F"] = "CUDA_R_32F",
        ["CudaDataType.R64F"] = "CUDA_R_64F",
        ["CudaDataType.R16F"] = "CUDA_R_16F",
        ["CudaDataType.R16BF"] = "CUDA_R_16BF",
    };

    /// <summary>The structs our interop mirrors, with the header fields each field stands for.</summary>
    public static readonly MirroredStruct[] Structs =
    [
        new(typeof(Interop.LtMatmulAlgorithm), "cublasLtMatmulAlgo_t", [("Data", "data")]),
        new(typeof(Interop.LtHeuristicResult), "cublasLtMatmulHeuristicResult_t",
            [("Algorithm", "algo"), ("WorkspaceSize", "workspaceSize"), ("State", "state"), ("WavesCount", "wavesCount"), ("Reserved", "reserved")]),
    ];

    /// <summary>
    /// "MaxThreadsPerBlock" -> "MAX_THREADS_PER_BLOCK", "L2CacheSize" -> "L2_CACHE_SIZE", "Compute32FPedantic" ->
    /// "COMPUTE_32F_PEDANTIC": a break before a capital that follows a lower-case letter or starts a word
    /// (capital then lower case), and before digits that follow a lower-case letter.
    /// </summary>
    public static string ScreamingSnake(string name)
    {
        var text = new StringBuilder();
        for (int i = 0; i < name.Length; i++)
        {
            char c = name[i];
            if (i > 0)
            {
                char previous = name[i - 1];
                bool next = i + 1 < name.Length && char.IsLower(name[i + 1]);
                bool breakBefore = char.IsUpper(c) ? char.IsLower(previous) || next : char.IsDigit(c) && char.IsLower(previous);
                if (breakBefore)
                {
                    text.Append('_');
                }
            }
            text.Append(char.ToUpperInvariant(c));
        }
        return text.ToString();
    }
}
