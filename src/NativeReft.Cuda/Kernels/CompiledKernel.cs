namespace NativeReft.Cuda;

/// <summary>What the compiler produced: a CUBIN for a real architecture, or PTX for the driver to finish.</summary>
public enum KernelImageKind
{
    /// <summary>Machine code (SASS) for one real architecture (sm_XX); loads without JIT.</summary>
    Cubin,

    /// <summary>PTX for a virtual architecture (compute_XX); the driver JIT-compiles it at load.</summary>
    Ptx,

    /// <summary>
    /// Host code: the file was compiled by g++ into the CPU kernel emulator at build time (no image bytes, no
    /// ptxas report).
    /// </summary>
    Host,
}

/// <summary>How to compile a kernel file.</summary>
/// <param name="Architecture">The target, e.g. "sm_90" (a real architecture: CUBIN) or "compute_90" (PTX).</param>
/// <param name="Defines">Preprocessor definitions (-D NAME=VALUE), if any.</param>
public sealed record KernelCompileOptions(string Architecture, IReadOnlyDictionary<string, string>? Defines = null)
{
    /// <summary>
    /// The NVRTC command line, in a fixed order so that equal options give equal cache keys: the architecture,
    /// C++17, line info for profilers, ptxas's resource report (registers, shared memory, spills), the defines.
    /// </summary>
    public IReadOnlyList<string> ToNvrtcOptions()
    {
        var options = new List<string> { $"--gpu-architecture={Architecture}", "--std=c++17", "-lineinfo" };
        if (Architecture.StartsWith("sm_", StringComparison.Ordinal))
        {
            options.Add("--ptxas-options=-v");
        }
        foreach (var (name, value) in (Defines ?? new Dictionary<string, string>()).OrderBy(d => d.Key, StringComparer.Ordinal))
        {
            options.Add(string.IsNullOrEmpty(value) ? $"-D{name}" : $"-D{name}={value}");
        }
        return options;
    }
}

/// <summary>One compiled kernels/*.cu file.</summary>
/// <param name="FileName">The kernel file, e.g. "elementwise.cu".</param>
/// <param name="Architecture">What it was compiled for (may differ from the request: see <see cref="NvrtcCompiler"/>).</param>
/// <param name="Kind">CUBIN or PTX.</param>
/// <param name="Image">The bytes to load (PTX ends with its NUL).</param>
/// <param name="Log">The compiler's log: warnings, and ptxas's resource report for CUBIN.</param>
public sealed record CompiledKernel(string FileName, string Architecture, KernelImageKind Kind, byte[] Image, string Log)
{
    /// <summary>Whether <see cref="KernelCache"/> took this image from disk rather than compiling it.</summary>
    public bool FromCache { get; init; }

    /// <summary>Per-kernel registers, shared memory and spills from ptxas's report (empty for PTX).</summary>
    public IReadOnlyList<KernelResourceUsage> Resources => PtxasReport.Parse(Log);

    /// <summary>The compiler's warnings (lines of the log that say "warning").</summary>
    public IReadOnlyList<string> Warnings => Log.Split('\n')
        .Where(line => line.Contains("warning", StringComparison.OrdinalIgnoreCase))
        .Select(line => line.TrimEnd('\r'))
        .ToArray();
}
