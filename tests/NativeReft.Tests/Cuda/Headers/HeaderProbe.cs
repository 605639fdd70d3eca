using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace NativeReft.Tests.Cuda.Headers;

/// <summary>What the CUDA headers say about one function: the symbol its name becomes after the header's
/// #defines, and the C ABI of its return value and parameters.</summary>
internal sealed record HeaderFunction(string Symbol, AbiValue Return, AbiValue[] Parameters);

/// <summary>
/// Compiles and runs one small C++ program against the CUDA headers that prints, for every entry point, constant
/// and struct our interop declares, what the headers declare: so a signature or value can be compared with ours
/// without a GPU. A name the headers do not declare fails the compile, and the compiler's message says which.
/// </summary>
internal sealed class HeaderProbe
{
    public required IReadOnlyDictionary<string, HeaderFunction> Functions { get; init; }
    public required IReadOnlyDictionary<string, long> Constants { get; init; }
    public required IReadOnlyDictionary<string, long> Sizes { get; init; }

    /// <summary>Offsets by "type.field".</summary>
    public required IReadOnlyDictionary<string, long> Offsets { get; init; }

    public static HeaderProbe Run(string includeDirectory, IEnumerable<EntryPoint> entries,
        IEnumerable<HeaderConstant> constants, IEnumerable<MirroredStruct> structs)
    {
        string dir = TestData.TempDirectory();
        string source = Path.Combine(dir, "probe.cpp");
        string program = Path.Combine(dir, "probe");
        File.WriteAllText(source, Source(entries, constants, structs));
        RunTool("g++", ["-std=c++17", "-w", "-I", includeDirectory, source, "-o", program]);
        return Parse(RunTool(program, []));
    }

    /// <summary>
    /// cublas_api.h adds C++-only inline overloads (computeType as cudaDataType) beside these; the cast picks the
    /// exported C function, and fails to compile unless the type is exactly its declaration.
    /// </summary>
    private static readonly Dictionary<string, string> OverloadedInCpp = new()
    {
        ["cublasGemmEx"] = "cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, "
            + "const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*, cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t)",
        ["cublasGemmStridedBatchedEx"] = "cublasStatus_t (*)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*, "
            + "const void*, cudaDataType, int, long long, const void*, cudaDataType, int, long long, const void*, void*, cudaDataType, int, "
            + "long long, int, cublasComputeType_t, cublasGemmAlgo_t)",
    };

    private static string Source(IEnumerable<EntryPoint> entries, IEnumerable<HeaderConstant> constants, IEnumerable<MirroredStruct> structs)
    {
        var code = new StringBuilder("""
            #include <cuda.h>
            #include <cublas_v2.h>
            #include <cublasLt.h>
            #include <nvrtc.h>
            #include <cstddef>
            #include <cstdio>
            #include <type_traits>

            template <class T, class = void> struct complete : std::false_type {};
            template <class T> struct complete<T, decltype(void(sizeof(T)))> : std::true_type {};

            // " size[f][->pointee]", as AbiValue.ToString writes it.
            template <class T> void abi() {
              if constexpr (std::is_void_v<T>) {
                std::printf(" 0");
              } else if constexpr (std::is_pointer_v<T>) {
                using P = std::remove_cv_t<std::remove_pointer_t<T>>;
                if constexpr (!std::is_void_v<P> && !std::is_function_v<P> && complete<P>::value) {
                  std::printf(" %zu->%zu", sizeof(T), sizeof(P));
                } else {
                  std::printf(" %zu", sizeof(T));
                }
              } else {
                std::printf(" %zu%s", sizeof(T), std::is_floating_point_v<T> ? "f" : "");
              }
            }

            template <class R, class... A> void function(const char* name, const char* symbol, R (*)(A...)) {
              std::printf("function %s %s", name, symbol);
              abi<R>();
              (abi<A>(), ...);
              std::printf("\n");
            }

            // The second name is the first after macro expansion: the symbol the header binds it to. The address
            // is only inspected (decltype), so nothing needs linking.
            #define SYMBOL(f) #f
            #define FUNCTION(f) function(#f, SYMBOL(f), static_cast<decltype(&f)>(nullptr))
            #define OVERLOADED(f, type) function(#f, SYMBOL(f), static_cast<decltype(static_cast<type>(&f))>(nullptr))

            int main() {

            """);
        foreach (var entry in entries)
        {
            code.AppendLine(OverloadedInCpp.TryGetValue(entry.Symbol, out string? type)
                ? $"  OVERLOADED({entry.Symbol}, {type});"
                : $"  FUNCTION({entry.Symbol});");
        }
        foreach (var constant in constants)
        {
            code.AppendLine($"  std::printf(\"constant %s %lld\\n\", \"{constant.Name}\", (long long)({constant.Name}));");
        }
        foreach (var mirrored in structs)
        {
            code.AppendLine($"  std::printf(\"size %s %zu\\n\", \"{mirrored.HeaderType}\", sizeof({mirrored.HeaderType}));");
            foreach (var (_, field) in mirrored.Fields)
            {
                code.AppendLine($"  std::printf(\"offset %s.%s %zu\\n\", \"{mirrored.HeaderType}\", \"{field}\", offsetof({mirrored.HeaderType}, {field}));");
            }
        }
        code.AppendLine("  return 0;\n}");
        return code.ToString();
    }

    private static HeaderProbe Parse(string output)
    {
        var functions = new Dictionary<string, HeaderFunction>();
        var constants = new Dictionary<string, long>();
        var sizes = new Dictionary<string, long>();
        var offsets = new Dictionary<string, long>();
        foreach (string line in output.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] words = line.Split(' ');
            switch (words[0])
            {
                case "function":
                    var values = words.Skip(3).Select(ParseAbi).ToArray();
                    functions[words[1]] = new HeaderFunction(words[2], values[0], values[1..]);
                    break;
                case "constant":
                    constants[words[1]] = long.Parse(words[2], CultureInfo.InvariantCulture);
                    break;
                case "size":
                    sizes[words[1]] = long.Parse(words[2], CultureInfo.InvariantCulture);
                    break;
                case "offset":
                    offsets[words[1]] = long.Parse(words[2], CultureInfo.InvariantCulture);
                    break;
                default:
                    throw new FormatException($"unexpected probe output line: {line}");
            }
        }
        return new HeaderProbe { Functions = functions, Constants = constants, Sizes = sizes, Offsets = offsets };
    }

    /// <summary>"8->4", "4f", "0": the inverse of <see cref="AbiValue.ToString"/>.</summary>
    private static AbiValue ParseAbi(string text)
    {
        string[] parts = text.Split("->");
        bool floating = parts[0].EndsWith('f');
        int size = int.Parse(parts[0].TrimEnd('f'), CultureInfo.InvariantCulture);
        return new AbiValue(size, floating, parts.Length > 1 ? int.Parse(parts[1], CultureInfo.InvariantCulture) : 0);
    }

    private static string RunTool(string file, string[] arguments)
    {
        (int Exit, string Stdout, string Stderr) result;
        try
        {
            result = ExternalProcess.Run(new ProcessStartInfo(file, arguments));
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            Assert.Fail($"cannot run {file}: {e.Message} (the probe needs g++, as the emulator build does)");
            throw;
        }
        if (result.Exit != 0)
        {
            Assert.Fail($"{Path.GetFileName(file)} failed (exit {result.Exit}):\n{result.Stderr}{result.Stdout}");
        }
        return result.Stdout;
    }
}
