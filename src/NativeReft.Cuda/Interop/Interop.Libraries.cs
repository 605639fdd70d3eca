using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>
    /// Logical library names for [LibraryImport]. They are not file names: <see cref="NativeLibraryResolver"/>
    /// maps each to the newest installed version of the real library.
    /// </summary>
    internal static class Libraries
    {
        public const string CudaDriver = "nativereft-cuda";
        public const string Nvrtc = "nativereft-nvrtc";
        public const string Cublas = "nativereft-cublas";
        public const string CublasLt = "nativereft-cublaslt";

        private static readonly object Gate = new();
        private static NativeLibraryResolver? resolver;

        /// <summary>The process-wide resolver, registered for this assembly's imports on first use.</summary>
        public static NativeLibraryResolver Resolver
        {
            get
            {
                lock (Gate)
                {
                    if (resolver is null)
                    {
                        resolver = NativeLibraryResolver.CreateDefault();
                        NativeLibrary.SetDllImportResolver(typeof(Interop).Assembly, resolver.ResolveImport);
                    }
                    return resolver;
                }
            }
        }

        /// <summary>Whether <paramref name="library"/> is installed (loads it on the first call).</summary>
        public static bool IsAvailable(CudaLibrary library) => Resolver.Resolve(library).Found;

        /// <summary>Loads <paramref name="library"/> or throws an error that says what to install.</summary>
        public static void Require(CudaLibrary library)
        {
            var resolution = Resolver.Resolve(library);
            if (!resolution.Found)
            {
                throw new CudaLibraryNotFoundException(library, resolution.Tried);
            }
        }

        /// <summary>What to install when <paramref name="library"/> is missing.</summary>
        public static string InstallHint(CudaLibrary library) => library switch
        {
            CudaLibrary.Driver => "install the NVIDIA driver (libcuda.so.1 comes with it); without a GPU, kernels still compile with NVRTC",
            CudaLibrary.Nvrtc => "install NVRTC: on Debian add 'non-free' to the apt sources and run 'apt-get install libnvrtc11.2 libnvrtc-builtins11.8', or install the CUDA Toolkit (libnvrtc.so.12/13)",
            CudaLibrary.Cublas => "install cuBLAS: the CUDA Toolkit's libcublas.so.12/13, or Debian non-free 'libcublas11'",
            CudaLibrary.CublasLt => "install cuBLASLt: the CUDA Toolkit's libcublasLt.so.12/13, or Debian non-free 'libcublaslt11'",
            _ => throw new ArgumentOutOfRangeException(nameof(library), library, null),
        };

        /// <summary>Human name for messages.</summary>
        public static string DisplayName(CudaLibrary library) => library switch
        {
            CudaLibrary.Driver => "CUDA driver",
            CudaLibrary.Nvrtc => "NVRTC",
            CudaLibrary.Cublas => "cuBLAS",
            CudaLibrary.CublasLt => "cuBLASLt",
            _ => throw new ArgumentOutOfRangeException(nameof(library), library, null),
        };
    }
}
