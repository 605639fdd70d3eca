using System.Globalization;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.RegularExpressions;
using static NativeReft.Cuda.Interop.Nvrtc;

namespace NativeReft.Cuda;

/// <summary>Compiles a kernel file; <see cref="KernelCache"/> keys its disk cache on <see cref="Version"/>.</summary>
public interface IKernelCompiler
{
    /// <summary>The compiler and its version, e.g. "NVRTC 12.8": part of every cache key.</summary>
    string Version { get; }

    /// <summary>Compiles <paramref name="source"/>; throws <see cref="CudaException"/> (with the log) on errors.</summary>
    CompiledKernel Compile(KernelSource source, KernelCompileOptions options);
}

/// <summary>
/// NVRTC: CUDA C++ to CUBIN (or PTX) in process, no GPU needed. A real architecture this NVRTC knows gives a
/// CUBIN with ptxas's resource report in the log. One it does not know (a GPU newer than the library) gives PTX
/// for the newest virtual architecture it does know, which the driver compiles at load time.
/// </summary>
public sealed partial class NvrtcCompiler : IKernelCompiler
{
    private readonly int[] supported;

    /// <summary>Loads NVRTC; throws <see cref="CudaLibraryNotFoundException"/> (saying what to install) if it is missing.</summary>
    public NvrtcCompiler()
    {
        Interop.Libraries.Require(CudaLibrary.Nvrtc);
        Check(nvrtcVersion(out int major, out int minor));
        Major = major;
        Minor = minor;
        Check(nvrtcGetNumSupportedArchs(out int count));
        supported = new int[count];
        unsafe
        {
            fixed (int* architectures = supported)
            {
                Check(nvrtcGetSupportedArchs(architectures));
            }
        }
    }

    /// <summary>Whether NVRTC is installed (loads it on the first call).</summary>
    public static bool IsAvailable => Interop.Libraries.IsAvailable(CudaLibrary.Nvrtc);

    /// <summary>NVRTC's major version.</summary>
    public int Major { get; }

    /// <summary>NVRTC's minor version.</summary>
    public int Minor { get; }

    /// <inheritdoc />
    public string Version => $"NVRTC {Major}.{Minor}";

    /// <summary>The real architectures this NVRTC compiles for (e.g. 80 for sm_80), ascending.</summary>
    public IReadOnlyList<int> SupportedArchitectures => supported;

    /// <summary>
    /// What <paramref name="requested"/> ("sm_90", "sm_90a", "compute_90") compiles to with this NVRTC: itself
    /// when supported, else PTX for the newest supported virtual architecture below it.
    /// </summary>
    public string ResolveArchitecture(string requested)
    {
        var (prefix, number, suffix) = ParseArchitecture(requested);
        if (supported.Contains(number))
        {
            return $"{prefix}_{number}{suffix}";
        }
        int fallback = supported.Where(a => a <= number).DefaultIfEmpty(-1).Max();
        if (fallback < 0)
        {
            throw new ArgumentException($"{requested} is older than anything {Version} compiles for ({string.Join(", ", supported.Select(a => "sm_" + a))})", nameof(requested));
        }
        return $"compute_{fallback}";
    }

    /// <summary>Splits "sm_90a" into ("sm", 90, "a"); throws for anything that is not an architecture.</summary>
    public static (string Prefix, int Number, string Suffix) ParseArchitecture(string architecture)
    {
        ArgumentNullException.ThrowIfNull(architecture);
        var match = ArchitecturePattern().Match(architecture);
        if (!match.Success)
        {
            throw new ArgumentException($"'{architecture}' is not a CUDA architecture (expected e.g. sm_80, sm_90, sm_90a or compute_90)", nameof(architecture));
        }
        return (match.Groups[1].Value, int.Parse(match.Groups[2].Value, CultureInfo.InvariantCulture), match.Groups[3].Value);
    }

    /// <inheritdoc />
    public CompiledKernel Compile(KernelSource source, KernelCompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        string architecture = ResolveArchitecture(options.Architecture);
        var resolved = options with { Architecture = architecture };
        using var program = NvrtcProgramHandle.Create(source);
        string log = CompileProgram(program, resolved.ToNvrtcOptions(), source.FileName);
        bool cubin = architecture.StartsWith("sm_", StringComparison.Ordinal);
        byte[] image = cubin ? GetCubin(program) : GetPtx(program);
        return new CompiledKernel(source.FileName, architecture, cubin ? KernelImageKind.Cubin : KernelImageKind.Ptx, image, log);
    }

    private static unsafe string CompileProgram(NvrtcProgramHandle program, IReadOnlyList<string> options, string fileName)
    {
        using var native = new Utf8StringArray(options);
        var status = nvrtcCompileProgram(program.DangerousGetHandle(), options.Count, native.Pointers);
        string log = GetLog(program);
        if (status != Interop.NvrtcResult.Success)
        {
            throw Error(status, $"nvrtcCompileProgram({fileName}, {string.Join(' ', options)})", log);
        }
        return log;
    }

    private static unsafe string GetLog(NvrtcProgramHandle program)
    {
        nint handle = program.DangerousGetHandle();
        Check(nvrtcGetProgramLogSize(handle, out nuint size));
        var bytes = new byte[(int)size];
        fixed (byte* log = bytes)
        {
            Check(nvrtcGetProgramLog(handle, log));
        }
        return Encoding.UTF8.GetString(bytes).TrimEnd('\0');
    }

    private static unsafe byte[] GetCubin(NvrtcProgramHandle program)
    {
        nint handle = program.DangerousGetHandle();
        Check(nvrtcGetCUBINSize(handle, out nuint size));
        var image = new byte[(int)size];
        fixed (byte* cubin = image)
        {
            Check(nvrtcGetCUBIN(handle, cubin));
        }
        return image;
    }

    private static unsafe byte[] GetPtx(NvrtcProgramHandle program)
    {
        nint handle = program.DangerousGetHandle();
        Check(nvrtcGetPTXSize(handle, out nuint size));
        var image = new byte[(int)size]; // includes the trailing NUL cuModuleLoadData needs
        fixed (byte* ptx = image)
        {
            Check(nvrtcGetPTX(handle, ptx));
        }
        return image;
    }

    [GeneratedRegex(@"^(sm|compute)_(\d{2,3})([af]?)$")]
    private static partial Regex ArchitecturePattern();

    /// <summary>A nvrtcProgram; destroyed with nvrtcDestroyProgram.</summary>
    private sealed class NvrtcProgramHandle : SafeHandle
    {
        private NvrtcProgramHandle()
            : base(0, ownsHandle: true)
        {
        }

        public override bool IsInvalid => handle == 0;

        public static unsafe NvrtcProgramHandle Create(KernelSource source)
        {
            var headers = source.Headers;
            using var text = new Utf8StringArray([source.Text, source.FileName]);
            using var headerTexts = new Utf8StringArray(headers.Select(h => h.Text).ToArray());
            using var headerNames = new Utf8StringArray(headers.Select(h => h.Name).ToArray());
            var program = new NvrtcProgramHandle();
            Check(nvrtcCreateProgram(out nint created, text.Pointers[0], text.Pointers[1], headers.Count, headerTexts.Pointers, headerNames.Pointers));
            program.SetHandle(created);
            return program;
        }

        protected override bool ReleaseHandle()
        {
            nint program = handle;
            return nvrtcDestroyProgram(ref program) == Interop.NvrtcResult.Success;
        }
    }

    /// <summary>NUL-terminated UTF-8 copies of strings in native memory, as a char** for the C API.</summary>
    private sealed unsafe class Utf8StringArray : IDisposable
    {
        private readonly int count;

        public Utf8StringArray(IReadOnlyList<string> strings)
        {
            count = strings.Count;
            Pointers = (byte**)NativeMemory.AllocZeroed((nuint)Math.Max(count, 1), (nuint)sizeof(byte*));
            for (int i = 0; i < count; i++)
            {
                Pointers[i] = (byte*)Marshal.StringToCoTaskMemUTF8(strings[i]);
            }
        }

        public byte** Pointers { get; }

        public void Dispose()
        {
            for (int i = 0; i < count; i++)
            {
                Marshal.FreeCoTaskMem((nint)Pointers[i]);
            }
            NativeMemory.Free(Pointers);
        }
    }
}
