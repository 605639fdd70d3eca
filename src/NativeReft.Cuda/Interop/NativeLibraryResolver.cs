using System.Collections.Concurrent;
using System.Reflection;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

/// <summary>
/// Finds the NVIDIA libraries across CUDA versions: for each library, its file names newest first
/// (libnvrtc.so.13, .12, then Debian's .11.2), each tried first through the system loader (LD_LIBRARY_PATH,
/// the ldconfig cache) and then in the CUDA install folders. The loader itself is a parameter, so the
/// search order is tested without any CUDA library present.
/// </summary>
internal sealed class NativeLibraryResolver
{
    /// <summary>Tries to load one library file; returns false (and no handle) when it cannot.</summary>
    public delegate bool Probe(string path, out nint handle);

    private readonly Probe probe;
    private readonly IReadOnlyList<string> searchDirectories;
    private readonly ConcurrentDictionary<CudaLibrary, LibraryResolution> resolutions = new();

    public NativeLibraryResolver(Probe probe, IReadOnlyList<string> searchDirectories)
    {
        this.probe = probe;
        this.searchDirectories = searchDirectories;
    }

    /// <summary>The resolver over the real loader and the default CUDA folders.</summary>
    public static NativeLibraryResolver CreateDefault() => new(NativeLibrary.TryLoad, DefaultSearchDirectories());

    /// <summary>The file names of <paramref name="library"/>, in the order they are tried (newest first).</summary>
    public static IReadOnlyList<string> FileNames(CudaLibrary library) => library switch
    {
        CudaLibrary.Driver => ["libcuda.so.1", "libcuda.so"],
        CudaLibrary.Nvrtc => ["libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2", "libnvrtc.so"],
        CudaLibrary.Cublas => ["libcublas.so.13", "libcublas.so.12", "libcublas.so.11", "libcublas.so"],
        CudaLibrary.CublasLt => ["libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"],
        _ => throw new ArgumentOutOfRangeException(nameof(library), library, null),
    };

    /// <summary>
    /// Folders tried after the system loader: $CUDA_HOME and $CUDA_PATH, then /usr/local/cuda, each with its
    /// lib64 and targets/x86_64-linux/lib.
    /// </summary>
    public static IReadOnlyList<string> DefaultSearchDirectories()
    {
        var roots = new List<string>();
        foreach (string variable in (string[])["CUDA_HOME", "CUDA_PATH"])
        {
            string? root = Environment.GetEnvironmentVariable(variable);
            if (!string.IsNullOrWhiteSpace(root))
            {
                roots.Add(root);
            }
        }
        roots.Add("/usr/local/cuda");
        return roots.Distinct(StringComparer.Ordinal)
            .SelectMany(root => new[] { Path.Combine(root, "lib64"), Path.Combine(root, "targets", "x86_64-linux", "lib") })
            .ToArray();
    }

    /// <summary>Resolves <paramref name="library"/> once; later calls return the same answer.</summary>
    public LibraryResolution Resolve(CudaLibrary library) => resolutions.GetOrAdd(library, Search);

    /// <summary>The <see cref="NativeLibrary.SetDllImportResolver"/> callback: maps our logical names to files.</summary>
    public nint ResolveImport(string libraryName, Assembly assembly, DllImportSearchPath? searchPath)
    {
        CudaLibrary? library = libraryName switch
        {
            Interop.Libraries.CudaDriver => CudaLibrary.Driver,
            Interop.Libraries.Nvrtc => CudaLibrary.Nvrtc,
            Interop.Libraries.Cublas => CudaLibrary.Cublas,
            Interop.Libraries.CublasLt => CudaLibrary.CublasLt,
            _ => null,
        };
        // Zero hands the name back to the default loader, which fails with DllNotFoundException for ours.
        return library is null ? 0 : Resolve(library.Value).Handle;
    }

    private LibraryResolution Search(CudaLibrary library)
    {
        var tried = new List<string>();
        foreach (string name in FileNames(library))
        {
            foreach (string candidate in searchDirectories.Select(dir => Path.Combine(dir, name)).Prepend(name))
            {
                tried.Add(candidate);
                if (probe(candidate, out nint handle) && handle != 0)
                {
                    return new LibraryResolution(library, handle, candidate, tried);
                }
            }
        }
        return new LibraryResolution(library, 0, null, tried);
    }
}

/// <summary>Where a library was found, or every path tried when it was not.</summary>
internal sealed record LibraryResolution(CudaLibrary Library, nint Handle, string? LoadedFrom, IReadOnlyList<string> Tried)
{
    public bool Found => Handle != 0;
}
