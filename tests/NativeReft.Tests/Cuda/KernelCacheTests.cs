using System.Text;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

public sealed class KernelCacheTests
{
    private static readonly KernelHeader Common = new("common.cuh", "#pragma once\n");
    private static readonly KernelSource Source = new("axpy.cu", "#include \"common.cuh\"\n// v1\n", [Common]);
    private static readonly KernelCompileOptions Sm90 = new("sm_90");

    private string directory = null!;

    /// <summary>A compiler that counts its calls; its "image" says what it compiled.</summary>
    private sealed class FakeCompiler(string version = "fake 1.0") : IKernelCompiler
    {
        public int Calls { get; private set; }

        public string Version => version;

        public CompiledKernel Compile(KernelSource source, KernelCompileOptions options)
        {
            Calls++;
            return new CompiledKernel(source.FileName, options.Architecture, KernelImageKind.Cubin,
                Encoding.UTF8.GetBytes($"{source.Text}|{options.Architecture}|{Calls}"),
                $"ptxas info    : Compiling entry function 'axpy_forward' for '{options.Architecture}'\nptxas info    : Used 12 registers");
        }
    }

    [SetUp]
    public void CreateDirectory() => directory = TestData.TempDirectory();

    [TearDown]
    public void DeleteDirectory() => Directory.Delete(directory, recursive: true);

    [Test]
    public void An_unchanged_source_loads_from_disk_without_compiling()
    {
        var first = new KernelCache(new FakeCompiler(), directory).GetOrCompile(Source, Sm90);
        Assert.That(first.FromCache, Is.False);
        Assert.That(File.Exists(new KernelCache(new FakeCompiler(), directory).EntryPath(Source, Sm90)), Is.True);

        var compiler = new FakeCompiler();
        var cache = new KernelCache(compiler, directory); // a new process, as far as the cache can tell
        var again = cache.GetOrCompile(Source, Sm90);
        Assert.That(compiler.Calls, Is.Zero);
        Assert.That(cache.Hits, Is.EqualTo(1));
        Assert.That(again.FromCache, Is.True);
        Assert.That(again.Image, Is.EqualTo(first.Image));
        Assert.That(again.Log, Is.EqualTo(first.Log));
        Assert.That(again.Architecture, Is.EqualTo("sm_90"));
        Assert.That(again.Resources.Single().Registers, Is.EqualTo(12), "the ptxas report survives the round trip");
    }

    [Test]
    public void A_changed_source_recompiles()
    {
        var compiler = new FakeCompiler();
        var cache = new KernelCache(compiler, directory);
        cache.GetOrCompile(Source, Sm90);
        var changed = cache.GetOrCompile(Source with { Text = Source.Text + "// v2\n" }, Sm90);
        Assert.That(compiler.Calls, Is.EqualTo(2));
        Assert.That(changed.FromCache, Is.False);
        Assert.That(Encoding.UTF8.GetString(changed.Image), Does.Contain("v2"));
    }

    [Test]
    public void A_changed_header_option_architecture_or_compiler_version_changes_the_key()
    {
        var cache = new KernelCache(new FakeCompiler(), directory);
        string key = cache.Key(Source, Sm90);
        Assert.That(cache.Key(Source with { Headers = [Common with { Text = "#pragma once\n// edited\n" }] }, Sm90), Is.Not.EqualTo(key));
        Assert.That(cache.Key(Source, new KernelCompileOptions("sm_80")), Is.Not.EqualTo(key));
        Assert.That(cache.Key(Source, Sm90 with { Defines = new Dictionary<string, string> { ["BLOCK"] = "128" } }), Is.Not.EqualTo(key));
        Assert.That(new KernelCache(new FakeCompiler("fake 2.0"), directory).Key(Source, Sm90), Is.Not.EqualTo(key));
        Assert.That(new KernelCache(new FakeCompiler(), directory).Key(Source, Sm90), Is.EqualTo(key), "the key is stable");
    }

    [TestCase("garbage")]
    [TestCase("truncated")]
    [TestCase("flipped byte")]
    [TestCase("empty")]
    public void A_corrupt_entry_is_recompiled_and_replaced(string damage)
    {
        var cache = new KernelCache(new FakeCompiler(), directory);
        var good = cache.GetOrCompile(Source, Sm90);
        string path = cache.EntryPath(Source, Sm90);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, damage switch
        {
            "garbage" => Encoding.UTF8.GetBytes("not a kernel cache entry"),
            "truncated" => bytes[..(bytes.Length / 2)],
            "flipped byte" => bytes.Select((b, i) => i == bytes.Length / 3 ? (byte)(b ^ 0x20) : b).ToArray(),
            _ => [],
        });

        var compiler = new FakeCompiler();
        var fresh = new KernelCache(compiler, directory);
        var recompiled = fresh.GetOrCompile(Source, Sm90);
        Assert.That(compiler.Calls, Is.EqualTo(1));
        Assert.That(fresh.CorruptEntries, Is.EqualTo(1));
        Assert.That(recompiled.FromCache, Is.False);
        Assert.That(recompiled.Architecture, Is.EqualTo(good.Architecture));

        var third = new KernelCache(new FakeCompiler(), directory).GetOrCompile(Source, Sm90);
        Assert.That(third.FromCache, Is.True, "the replaced entry is valid");
    }

    [Test]
    public void Writes_leave_no_temporary_files()
    {
        var cache = new KernelCache(new FakeCompiler(), directory);
        cache.GetOrCompile(Source, Sm90);
        cache.GetOrCompile(Source, new KernelCompileOptions("sm_80"));
        var files = Directory.GetFiles(directory).Select(Path.GetFileName).ToArray();
        Assert.That(files, Has.Length.EqualTo(2));
        Assert.That(files, Has.All.EndsWith(".bin"));
    }

    [Test]
    public void A_cache_folder_that_cannot_be_written_only_costs_recompiles()
    {
        string blocked = Path.Combine(directory, "a-file");
        File.WriteAllText(blocked, "");
        var compiler = new FakeCompiler();
        var cache = new KernelCache(compiler, Path.Combine(blocked, "kernels"));
        Assert.That(cache.GetOrCompile(Source, Sm90).Image, Is.Not.Empty);
        Assert.That(cache.GetOrCompile(Source, Sm90).FromCache, Is.False);
        Assert.That(compiler.Calls, Is.EqualTo(2));
    }

    [Test]
    public void The_default_folder_is_under_the_users_cache()
    {
        string expected = Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } xdg && Path.IsPathRooted(xdg)
            ? Path.Combine(xdg, "nativereft", "kernels")
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "nativereft", "kernels");
        Assert.That(KernelCache.DefaultDirectory(), Is.EqualTo(expected));
    }

    [Test]
    public void A_real_nvrtc_cubin_round_trips_through_the_cache()
    {
        CudaTestSupport.RequireNvrtc();
        var source = KernelSources.Get("elementwise.cu");
        var compiled = new KernelCache(new NvrtcCompiler(), directory).GetOrCompile(source, new KernelCompileOptions("sm_80"));
        var loaded = new KernelCache(new NvrtcCompiler(), directory).GetOrCompile(source, new KernelCompileOptions("sm_80"));
        Assert.That(loaded.FromCache, Is.True);
        Assert.That(loaded.Kind, Is.EqualTo(KernelImageKind.Cubin));
        Assert.That(loaded.Image, Is.EqualTo(compiled.Image));
        Assert.That(loaded.Resources, Is.EqualTo(compiled.Resources));
    }
}
