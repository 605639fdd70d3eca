using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

public sealed class NativeLibraryResolverTests
{
    private static readonly string[] Folders = ["/opt/cuda/lib64", "/usr/local/cuda/lib64"];

    /// <summary>A loader that only knows the given paths, and records every path it was asked for.</summary>
    private sealed class FakeLoader(params string[] loadable)
    {
        public List<string> Asked { get; } = [];

        public bool Probe(string path, out nint handle)
        {
            Asked.Add(path);
            int index = Array.IndexOf(loadable, path);
            handle = index < 0 ? 0 : 0x1000 + index;
            return index >= 0;
        }
    }

    [Test]
    public void The_newest_version_wins_when_several_are_installed()
    {
        var loader = new FakeLoader("libnvrtc.so.11.2", "libnvrtc.so.12", "libnvrtc.so.13");
        var found = new NativeLibraryResolver(loader.Probe, Folders).Resolve(CudaLibrary.Nvrtc);
        Assert.That(found.LoadedFrom, Is.EqualTo("libnvrtc.so.13"));
        Assert.That(loader.Asked, Is.EqualTo(new[] { "libnvrtc.so.13" }));
    }

    [Test]
    public void Older_versions_are_tried_in_order_down_to_debians_11_2()
    {
        var loader = new FakeLoader("libnvrtc.so.11.2");
        var found = new NativeLibraryResolver(loader.Probe, Folders).Resolve(CudaLibrary.Nvrtc);
        Assert.That(found.Found, Is.True);
        Assert.That(found.LoadedFrom, Is.EqualTo("libnvrtc.so.11.2"));
        Assert.That(found.Tried, Is.EqualTo(new[]
        {
            "libnvrtc.so.13", "/opt/cuda/lib64/libnvrtc.so.13", "/usr/local/cuda/lib64/libnvrtc.so.13",
            "libnvrtc.so.12", "/opt/cuda/lib64/libnvrtc.so.12", "/usr/local/cuda/lib64/libnvrtc.so.12",
            "libnvrtc.so.11.2",
        }));
    }

    [Test]
    public void A_cuda_folder_is_searched_after_the_system_loader_for_each_version()
    {
        var loader = new FakeLoader("/usr/local/cuda/lib64/libcublasLt.so.12", "libcublasLt.so.11");
        var found = new NativeLibraryResolver(loader.Probe, Folders).Resolve(CudaLibrary.CublasLt);
        Assert.That(found.LoadedFrom, Is.EqualTo("/usr/local/cuda/lib64/libcublasLt.so.12"), "12 in a CUDA folder beats 11 on the loader path");
    }

    [Test]
    public void The_driver_is_libcuda_so_1()
    {
        var loader = new FakeLoader("libcuda.so.1");
        Assert.That(new NativeLibraryResolver(loader.Probe, Folders).Resolve(CudaLibrary.Driver).LoadedFrom, Is.EqualTo("libcuda.so.1"));
        Assert.That(NativeLibraryResolver.FileNames(CudaLibrary.Cublas), Is.EqualTo(new[] { "libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so" }));
    }

    [Test]
    public void A_missing_library_reports_every_path_tried_and_what_to_install()
    {
        var loader = new FakeLoader();
        var missing = new NativeLibraryResolver(loader.Probe, Folders).Resolve(CudaLibrary.Nvrtc);
        Assert.That(missing.Found, Is.False);
        Assert.That(missing.Handle, Is.EqualTo((nint)0));
        Assert.That(missing.Tried, Has.Count.EqualTo(4 * 3));

        var error = new CudaLibraryNotFoundException(CudaLibrary.Nvrtc, missing.Tried);
        Assert.That(error.Message, Does.StartWith("NVRTC not found (tried libnvrtc.so.13, /opt/cuda/lib64/libnvrtc.so.13"));
        Assert.That(error.Message, Does.Contain("apt-get install libnvrtc11.2 libnvrtc-builtins11.8"));
    }

    [Test]
    public void Each_library_is_searched_once()
    {
        var loader = new FakeLoader("libcuda.so.1");
        var resolver = new NativeLibraryResolver(loader.Probe, Folders);
        resolver.Resolve(CudaLibrary.Driver);
        resolver.Resolve(CudaLibrary.Driver);
        Assert.That(loader.Asked, Has.Count.EqualTo(1));
    }

    [Test]
    public void The_import_callback_maps_logical_names_and_leaves_other_names_to_the_default_loader()
    {
        var loader = new FakeLoader("libcublas.so.12");
        var resolver = new NativeLibraryResolver(loader.Probe, []);
        Assert.That(resolver.ResolveImport(Interop.Libraries.Cublas, typeof(Interop).Assembly, null), Is.EqualTo((nint)0x1000));
        Assert.That(resolver.ResolveImport(Interop.Libraries.Nvrtc, typeof(Interop).Assembly, null), Is.EqualTo((nint)0), "not installed");
        int asked = loader.Asked.Count;
        Assert.That(resolver.ResolveImport("libc", typeof(Interop).Assembly, null), Is.EqualTo((nint)0));
        Assert.That(loader.Asked, Has.Count.EqualTo(asked), "a name that is not ours is not probed");
    }

    [Test]
    public void Default_folders_include_the_standard_cuda_install()
    {
        Assert.That(NativeLibraryResolver.DefaultSearchDirectories(), Does.Contain("/usr/local/cuda/lib64"));
        Assert.That(NativeLibraryResolver.DefaultSearchDirectories(), Does.Contain("/usr/local/cuda/targets/x86_64-linux/lib"));
    }
}
