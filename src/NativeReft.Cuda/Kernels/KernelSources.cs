using System.Globalization;
using System.Reflection;
using System.Text.RegularExpressions;

namespace NativeReft.Cuda;

/// <summary>One kernels/*.cu file and the headers it may include.</summary>
/// <param name="FileName">The file name, e.g. "elementwise.cu".</param>
/// <param name="Text">The source text.</param>
/// <param name="Headers">Every kernels/*.cuh file, by the name an #include uses.</param>
public sealed partial record KernelSource(string FileName, string Text, IReadOnlyList<KernelHeader> Headers)
{
    private IReadOnlyList<KernelDeclaration>? kernels;

    /// <summary>The file name without ".cu", e.g. "elementwise".</summary>
    public string Stem => Path.GetFileNameWithoutExtension(FileName);

    /// <summary>The kernels the file declares, in source order, found as the emulator's build finds them.</summary>
    public IReadOnlyList<KernelDeclaration> Kernels => kernels ??= DeclarationPattern().Matches(Text)
        .Select(m => new KernelDeclaration(m.Groups[2].Value,
            m.Groups[1].Success ? int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture) : null))
        .ToArray();

    /// <summary>
    /// The most threads per block each kernel declares with <c>__launch_bounds__</c>, by kernel name; kernels that
    /// declare none are absent (their limit is the device's, 1024, and what their registers allow).
    /// </summary>
    public IReadOnlyDictionary<string, int> LaunchBounds =>
        Kernels.Where(k => k.MaxThreadsPerBlock is not null).ToDictionary(k => k.Name, k => k.MaxThreadsPerBlock!.Value);

    // As cmake/CMakeLists.txt finds them for the emulator's kernel tables: extern "C" __global__, launch bounds
    // allowed before void (their first argument captured when it is a number), the name, "(".
    [GeneratedRegex(@"extern\s+""C""\s+__global__\s+(?:__launch_bounds__\(\s*(\d+)?[^)]*\)\s+)?void\s+(\w+)\s*\(")]
    private static partial Regex DeclarationPattern();
}

/// <summary>One kernel a kernels/*.cu file declares.</summary>
/// <param name="Name">The kernel's name, e.g. "rmsnorm_forward".</param>
/// <param name="MaxThreadsPerBlock">The first argument of its <c>__launch_bounds__</c>, or null without one.</param>
public sealed record KernelDeclaration(string Name, int? MaxThreadsPerBlock);

/// <summary>A kernels/*.cuh header.</summary>
/// <param name="Name">The name an #include uses, e.g. "common.cuh".</param>
/// <param name="Text">The header text.</param>
public sealed record KernelHeader(string Name, string Text);

/// <summary>
/// The kernels/*.cu files and their headers, embedded in this assembly at build time: a published build compiles
/// them without a source tree, and NVRTC gets the headers from memory, never from the file system.
/// </summary>
public static class KernelSources
{
    private const string Prefix = "kernels/";
    private static readonly Lazy<IReadOnlyList<KernelHeader>> EmbeddedHeaders = new(LoadHeaders);
    private static readonly Lazy<IReadOnlyList<KernelSource>> EmbeddedSources = new(LoadSources);

    /// <summary>Every kernels/*.cu file, sorted by name.</summary>
    public static IReadOnlyList<KernelSource> All => EmbeddedSources.Value;

    /// <summary>Every kernels/*.cuh header, sorted by name.</summary>
    public static IReadOnlyList<KernelHeader> Headers => EmbeddedHeaders.Value;

    /// <summary>The kernel file <paramref name="fileName"/> (with or without ".cu").</summary>
    public static KernelSource Get(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        string name = fileName.EndsWith(".cu", StringComparison.Ordinal) ? fileName : fileName + ".cu";
        return All.FirstOrDefault(s => s.FileName == name)
            ?? throw new ArgumentException($"no kernel file {name}; embedded: {string.Join(", ", All.Select(s => s.FileName))}", nameof(fileName));
    }

    private static IReadOnlyList<KernelHeader> LoadHeaders() =>
        Resources(".cuh").Select(r => new KernelHeader(r.Name, r.Text)).ToArray();

    private static IReadOnlyList<KernelSource> LoadSources() =>
        Resources(".cu").Select(r => new KernelSource(r.Name, r.Text, Headers)).ToArray();

    private static IEnumerable<(string Name, string Text)> Resources(string extension)
    {
        var assembly = typeof(KernelSources).Assembly;
        return assembly.GetManifestResourceNames()
            .Where(n => n.StartsWith(Prefix, StringComparison.Ordinal) && n.EndsWith(extension, StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .Select(n => (n[Prefix.Length..], Read(assembly, n)));
    }

    private static string Read(Assembly assembly, string resource)
    {
        using var stream = assembly.GetManifestResourceStream(resource)!;
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }
}
