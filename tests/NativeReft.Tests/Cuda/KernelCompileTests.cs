using System.Text.RegularExpressions;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// Every kernels/*.cu file compiles through NvrtcCompiler (the path the runtime uses) for sm_80 and sm_90 with no
/// error, no warning and no register spill, and a kernel without __launch_bounds__ uses at most 64 registers. A
/// kernel that must spill goes in the allow-list with its reason.
/// </summary>
public sealed partial class KernelCompileTests
{
    private static readonly string[] Architectures = ["sm_80", "sm_90"];

    // (file, kernel) -> why spilling is acceptable there. Empty: no kernel spills today.
    private static readonly Dictionary<(string File, string Kernel), string> SpillAllowList = new();

    private static IEnumerable<TestCaseData> EveryKernelFileAndArchitecture() =>
        from source in KernelSources.All
        from architecture in Architectures
        select new TestCaseData(source.FileName, architecture).SetName($"{source.FileName} compiles for {architecture}");

    [TestCaseSource(nameof(EveryKernelFileAndArchitecture))]
    public void Kernel_file_compiles_cleanly(string fileName, string architecture)
    {
        CudaTestSupport.RequireNvrtc();
        var source = KernelSources.Get(fileName);
        var image = new NvrtcCompiler().Compile(source, new KernelCompileOptions(architecture));

        Assert.That(image.Kind, Is.EqualTo(KernelImageKind.Cubin));
        Assert.That(image.Architecture, Is.EqualTo(architecture));
        Assert.That(image.Image, Is.Not.Empty);
        Assert.That(image.Warnings, Is.Empty, $"{fileName} ({architecture}) compiles with warnings:\n{image.Log}");

        var declared = source.Kernels.Select(k => k.Name);
        Assert.That(image.Resources.Select(r => r.Kernel), Is.EquivalentTo(declared),
            "ptxas reports every extern \"C\" __global__ kernel of the file");
        foreach (var kernel in image.Resources)
        {
            Assert.That(kernel.Registers, Is.Positive, $"{kernel.Kernel}: registers");
            // Without __launch_bounds__ a kernel may be launched with 1024 threads, which fit a block's 64K
            // registers only at 64 a thread or fewer; past that a GPU refuses the launch, and the emulator (which has
            // no registers) would not notice. Kernels that need more declare their bounds, which ptxas then meets.
            if (!source.LaunchBounds.ContainsKey(kernel.Kernel))
            {
                Assert.That(kernel.Registers, Is.LessThanOrEqualTo(64),
                    $"{fileName}: {kernel.Kernel} uses {kernel.Registers} registers on {architecture}, too many for a 1024-thread block: declare __launch_bounds__ or use fewer");
            }
            if (kernel.Spills && !SpillAllowList.ContainsKey((fileName, kernel.Kernel)))
            {
                Assert.Fail($"{fileName}: {kernel.Kernel} spills on {architecture} ({kernel.SpillStoreBytes} bytes stored, {kernel.SpillLoadBytes} loaded); fix it or allow-list it with a reason");
            }
        }
    }

    [Test]
    public void Every_file_in_kernels_is_embedded()
    {
        string folder = Path.Combine(TestData.ProjectRoot, "kernels");
        var onDisk = Directory.GetFiles(folder).Select(Path.GetFileName).Where(f => f!.EndsWith(".cu", StringComparison.Ordinal) || f.EndsWith(".cuh", StringComparison.Ordinal));
        var embedded = KernelSources.All.Select(s => s.FileName).Concat(KernelSources.Headers.Select(h => h.Name));
        Assert.That(embedded, Is.EquivalentTo(onDisk));
        Assert.That(KernelSources.All.Select(s => s.Text), Is.EqualTo(KernelSources.All.Select(s => File.ReadAllText(Path.Combine(folder, s.FileName)))));
    }

    [Test]
    public void Kernel_files_use_no_system_headers()
    {
        foreach (var text in KernelSources.All.Select(s => (s.FileName, s.Text)).Concat(KernelSources.Headers.Select(h => (FileName: h.Name, h.Text))))
        {
            foreach (Match include in IncludeLine().Matches(text.Text))
            {
                Assert.That(include.Groups[1].Value, Is.AnyOf(KernelSources.Headers.Select(h => h.Name).ToArray()),
                    $"{text.FileName} includes {include.Value}: kernels include only kernels/*.cuh (NVRTC and the emulator compile them as they are)");
            }
        }
    }

    [Test]
    public void Lookup_by_stem_or_name_and_a_clear_error_for_a_missing_file()
    {
        Assert.That(KernelSources.Get("elementwise").FileName, Is.EqualTo("elementwise.cu"));
        Assert.That(KernelSources.Get("elementwise.cu").Headers.Select(h => h.Name), Does.Contain("common.cuh"));
        Assert.That(() => KernelSources.Get("missing.cu"), Throws.ArgumentException.With.Message.Contains("elementwise.cu"));
    }

    [TestCase("sm_90", "sm_90")]
    [TestCase("sm_80", "sm_80")]
    public void A_known_architecture_compiles_as_itself(string requested, string resolved)
    {
        CudaTestSupport.RequireNvrtc();
        Assert.That(new NvrtcCompiler().ResolveArchitecture(requested), Is.EqualTo(resolved));
    }

    [Test]
    public void An_architecture_newer_than_nvrtc_falls_back_to_ptx_for_the_newest_it_knows()
    {
        CudaTestSupport.RequireNvrtc();
        var compiler = new NvrtcCompiler();
        int newest = compiler.SupportedArchitectures[^1];
        Assert.That(compiler.ResolveArchitecture("sm_990"), Is.EqualTo($"compute_{newest}"));
        var image = compiler.Compile(KernelSources.Get("elementwise.cu"), new KernelCompileOptions("sm_990"));
        Assert.That(image.Kind, Is.EqualTo(KernelImageKind.Ptx));
        Assert.That(image.Image[^1], Is.Zero, "PTX keeps its NUL for cuModuleLoadData");
        Assert.That(System.Text.Encoding.ASCII.GetString(image.Image), Does.Contain(".entry fill_forward"));
    }

    [TestCase("sm90")]
    [TestCase("90")]
    [TestCase("gfx90a")]
    public void Something_that_is_not_an_architecture_is_rejected(string architecture) =>
        Assert.That(() => NvrtcCompiler.ParseArchitecture(architecture), Throws.ArgumentException.With.Message.Contains("sm_90"));

    [GeneratedRegex(@"#include\s+[""<]([^"">]+)["">]")]
    private static partial Regex IncludeLine();
}
