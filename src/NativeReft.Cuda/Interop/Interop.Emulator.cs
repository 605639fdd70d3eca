using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>
    /// The CPU kernel emulator's C ABI (cmake/emulator/emulator_abi.h): libnativereft_emu.so, built by cmake on
    /// `dotnet build` and copied next to the assemblies. Calls that fail return 1, with the message in
    /// <see cref="emu_last_error"/>.
    /// </summary>
    internal static unsafe partial class Emulator
    {
        public const string Library = "nativereft_emu";

        /// <summary>The file the build puts next to the assemblies.</summary>
        public const string FileName = "libnativereft_emu.so";

        /// <summary>grid and block sizes, laid out as CUDA's dim3.</summary>
        [StructLayout(LayoutKind.Sequential)]
        internal readonly record struct EmuDim3(uint X, uint Y, uint Z);

        internal const int TypeFloat32 = 0;
        internal const int TypeBFloat16 = 1;

        [LibraryImport(Library)]
        internal static partial byte* emu_last_error();

        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial nint emu_find_kernel(string name);

        [LibraryImport(Library)]
        internal static partial byte* emu_kernel_file(nint kernel);

        [LibraryImport(Library)]
        internal static partial int emu_kernel_parameters(nint kernel, int* sizes, int capacity);

        [LibraryImport(Library, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int emu_kernel_count(string? file);

        [LibraryImport(Library)]
        internal static partial int emu_launch_kernel(nint kernel, EmuDim3 grid, EmuDim3 block, nuint dynamicShared, nint stream, void** arguments);

        [LibraryImport(Library)]
        internal static partial void emu_set_check(int enabled);

        [LibraryImport(Library)]
        internal static partial int emu_threads();

        [LibraryImport(Library)]
        internal static partial void* emu_alloc(nuint bytes, int guard);

        [LibraryImport(Library)]
        internal static partial void emu_free(void* pointer);

        [LibraryImport(Library)]
        internal static partial int emu_gemm_strided_batched(int transa, int transb, int m, int n, int k, float alpha,
            ulong a, int aType, int lda, long strideA, ulong b, int bType, int ldb, long strideB, float beta,
            ulong c, int cType, int ldc, long strideC, int batch);

        /// <summary>Whether the library is there and loads (it needs g++ and cmake at build time).</summary>
        public static bool IsAvailable => Availability.Value.Handle != 0;

        /// <summary>Where the library was looked for, and why it did not load (null when it did).</summary>
        public static string? Problem => Availability.Value.Problem;

        /// <summary>The emulator's last error on this thread.</summary>
        public static string LastError() => Marshal.PtrToStringUTF8((nint)emu_last_error()) ?? "unknown emulator error";

        /// <summary>Loads a library of extra kernels (its static initializers register them with the emulator).</summary>
        public static void LoadKernelLibrary(string path)
        {
            _ = Availability.Value;
            NativeLibrary.Load(path);
        }

        private static readonly Lazy<(nint Handle, string? Problem)> Availability = new(() =>
        {
            string path = Path.Combine(AppContext.BaseDirectory, FileName);
            if (NativeLibrary.TryLoad(path, out nint handle) || NativeLibrary.TryLoad(Library, typeof(Interop).Assembly, null, out handle))
            {
                return (handle, null);
            }
            return (0, $"{FileName} not found next to the assemblies ({AppContext.BaseDirectory}): it is built by `dotnet build` when cmake and g++ are installed");
        });
    }
}
