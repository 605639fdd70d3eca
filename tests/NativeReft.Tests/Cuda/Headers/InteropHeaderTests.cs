using System.Diagnostics;
using System.Runtime.InteropServices;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Headers;

/// <summary>
/// Our hand-written bindings to the CUDA driver, cuBLAS, cuBLASLt and NVRTC checked against NVIDIA's own headers
/// and stub libraries, of CUDA 11.8 and 12.4 (from Debian: scripts/fetch-cuda.sh). Without a GPU nothing
/// else calls the driver or cuBLAS for real, so a wrong width, a missing parameter, a v1 symbol where the header
/// binds _v2, or a wrong enum value would first show in a GPU lease. Newer drivers and libraries keep these symbols
/// and values (the ABI NVIDIA keeps for applications built against older toolkits).
/// </summary>
[TestFixture("11.8")]
[TestFixture("12.4")]
public sealed class InteropHeaderTests(string version)
{
    private const string RootVariable = "NATIVEREFT_CUDA_HEADERS";

    private HeaderProbe? probe;
    private List<HeaderConstant>? checkedConstants;

    private HeaderProbe Probe => probe ??= HeaderProbe.Run(
        Path.Combine(Sdk(), "include"), InteropDeclarations.EntryPoints, CheckedConstants, InteropDeclarations.Structs);

    /// <summary>Our constants, less those newer than this version's headers.</summary>
    private List<HeaderConstant> CheckedConstants => checkedConstants ??=
        InteropDeclarations.Constants()
            .Where(c => !InteropDeclarations.NewerThan118.TryGetValue(c.Name, out var since) || Version.Parse(version) >= since)
            .ToList();

    [Test]
    public void Every_entry_point_has_the_headers_signature()
    {
        var mismatches = new List<string>();
        foreach (var entry in InteropDeclarations.EntryPoints)
        {
            var header = Probe.Functions[entry.Symbol];
            if (header.Symbol != entry.Symbol)
            {
                mismatches.Add($"{entry.Method} binds {entry.Symbol}, but the header binds that name to {header.Symbol}");
            }
            if (header.Parameters.Length != entry.Parameters.Length)
            {
                mismatches.Add($"{entry.Method}: {entry.Parameters.Length} parameters, the header has {header.Parameters.Length}");
                continue;
            }
            if (!entry.Return.Matches(header.Return))
            {
                mismatches.Add($"{entry.Method}: returns {entry.Return}, the header {header.Return}");
            }
            for (int i = 0; i < entry.Parameters.Length; i++)
            {
                if (!entry.Parameters[i].Matches(header.Parameters[i]))
                {
                    mismatches.Add($"{entry.Method}: parameter {i + 1} is {entry.Parameters[i]}, the header's is {header.Parameters[i]} (bytes, f = floating, -> pointee)");
                }
            }
        }
        Assert.That(InteropDeclarations.EntryPoints, Has.Count.GreaterThan(70), "the reflection found the entry points");
        Assert.That(mismatches, Is.Empty);
    }

    [Test]
    public void Every_enum_value_and_flag_has_the_headers_value()
    {
        var mismatches = CheckedConstants
            .Where(constant => Probe.Constants[constant.Name] != constant.Value)
            .Select(constant => $"{constant.Source} = {constant.Value}, but {constant.Name} = {Probe.Constants[constant.Name]}")
            .ToList();
        Assert.That(mismatches, Is.Empty);
    }

    [Test]
    public void Mirrored_structs_have_the_headers_size_and_field_offsets()
    {
        foreach (var mirrored in InteropDeclarations.Structs)
        {
            Assert.That(Marshal.SizeOf(mirrored.Type), Is.EqualTo(Probe.Sizes[mirrored.HeaderType]), $"sizeof({mirrored.HeaderType})");
            foreach (var (field, headerField) in mirrored.Fields)
            {
                Assert.That((long)Marshal.OffsetOf(mirrored.Type, field), Is.EqualTo(Probe.Offsets[$"{mirrored.HeaderType}.{headerField}"]),
                    $"offsetof({mirrored.HeaderType}, {headerField}) against {mirrored.Type.Name}.{field}");
            }
        }
    }

    [Test]
    public void Every_entry_point_is_exported_by_its_library()
    {
        var stubs = new Dictionary<string, string>
        {
            [Interop.Libraries.CudaDriver] = "libcuda.so",
            [Interop.Libraries.Cublas] = "libcublas.so",
            [Interop.Libraries.CublasLt] = "libcublasLt.so",
            [Interop.Libraries.Nvrtc] = "libnvrtc.so",
        };
        var exports = stubs.ToDictionary(pair => pair.Key, pair => ExportedSymbols(Path.Combine(Sdk(), "stubs", pair.Value)));
        var missing = InteropDeclarations.EntryPoints
            .Where(entry => !exports[entry.Library].Contains(entry.Symbol))
            .Select(entry => $"{entry.Method}: {entry.Symbol} is not exported by {stubs[entry.Library]}")
            .ToList();
        Assert.That(missing, Is.Empty);
    }

    // Read with nm, not loaded: a stub carries the real library's soname (libnvrtc.so.11.2, libcuda.so.1), so once
    // in this process it would stand in for the real one when the resolver loads it later.
    private static HashSet<string> ExportedSymbols(string library)
    {
        var (exit, stdout, stderr) = ExternalProcess.Run(new ProcessStartInfo("nm", ["-D", "--defined-only", library]));
        Assert.That(exit, Is.Zero, $"nm -D {library}: {stderr}");
        return stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(' ')[^1].Split('@')[0]) // "0000000000005cd0 T cuInit@@libcuda.so.1"
            .ToHashSet();
    }

    /// <summary>
    /// cuda-VERSION (include/ and stubs/) under NATIVEREFT_CUDA_HEADERS, by default ~/.cache/nativereft, where
    /// scripts/fetch-cuda.sh puts it. Missing, the tests are skipped with the reason; with CI=true they fail
    /// (.ci/run fetches it).
    /// </summary>
    private string Sdk()
    {
        string root = Environment.GetEnvironmentVariable(RootVariable) is { Length: > 0 } set
            ? set
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } cache
                ? cache
                : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "nativereft");
        string folder = Path.Combine(root, $"cuda-{version}");
        if (File.Exists(Path.Combine(folder, "include", "cuda.h")) && File.Exists(Path.Combine(folder, "stubs", "libcuda.so")))
        {
            return folder;
        }
        string reason = $"CUDA {version}'s headers are not in {folder}: run scripts/fetch-cuda.sh (or set {RootVariable})";
        if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
        {
            Assert.Fail(reason + " (CI=true: .ci/run fetches them)");
        }
        Assert.Ignore(reason);
        return folder;
    }
}
