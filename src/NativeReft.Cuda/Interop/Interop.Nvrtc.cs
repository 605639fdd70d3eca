using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>The NVRTC entry points NativeReft uses (nvrtc.h).</summary>
    internal static unsafe partial class Nvrtc
    {
        static Nvrtc() => _ = Libraries.Resolver;

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial byte* nvrtcGetErrorString(NvrtcResult result);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcVersion(out int major, out int minor);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetNumSupportedArchs(out int count);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetSupportedArchs(int* architectures);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcCreateProgram(out nint program, byte* source, byte* name,
            int headerCount, byte** headers, byte** includeNames);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcDestroyProgram(ref nint program);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcCompileProgram(nint program, int optionCount, byte** options);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetProgramLogSize(nint program, out nuint size);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetProgramLog(nint program, byte* log);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetPTXSize(nint program, out nuint size);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetPTX(nint program, byte* ptx);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetCUBINSize(nint program, out nuint size);

        [LibraryImport(Libraries.Nvrtc)]
        internal static partial NvrtcResult nvrtcGetCUBIN(nint program, byte* cubin);

        /// <summary>Throws <see cref="CudaException"/> unless <paramref name="status"/> is NVRTC_SUCCESS.</summary>
        internal static void Check(NvrtcResult status, [CallerArgumentExpression(nameof(status))] string call = "")
        {
            if (status != NvrtcResult.Success)
            {
                throw Error(status, call, log: null);
            }
        }

        /// <summary>The exception for a failed call; a failed compile passes the program log along.</summary>
        internal static CudaException Error(NvrtcResult status, string call, string? log)
        {
            string name = Describe(status);
            return new CudaException(CudaLibrary.Nvrtc, call, (int)status, name, ErrorTable.Describe(status), log);
        }

        /// <summary>NVRTC's own name for a status (nvrtcGetErrorString returns the enum name), or the table's.</summary>
        internal static string Describe(NvrtcResult status)
        {
            if (Libraries.IsAvailable(CudaLibrary.Nvrtc))
            {
                string? name = Marshal.PtrToStringUTF8((nint)nvrtcGetErrorString(status));
                if (!string.IsNullOrEmpty(name) && !name.Contains("unknown", StringComparison.OrdinalIgnoreCase))
                {
                    return name;
                }
            }
            return ErrorTable.Name(status);
        }
    }

    /// <summary>nvrtcResult (nvrtc.h).</summary>
    internal enum NvrtcResult
    {
        Success = 0,
        OutOfMemory = 1,
        ProgramCreationFailure = 2,
        InvalidInput = 3,
        InvalidProgram = 4,
        InvalidOption = 5,
        Compilation = 6,
        BuiltinOperationFailure = 7,
        NoNameExpressionsAfterCompilation = 8,
        NoLoweredNamesBeforeCompilation = 9,
        NameExpressionNotValid = 10,
        InternalError = 11,
        TimeFileWriteFailed = 12,
    }

    internal static partial class ErrorTable
    {
        public static string Name(NvrtcResult status) => status switch
        {
            NvrtcResult.Success => "NVRTC_SUCCESS",
            NvrtcResult.OutOfMemory => "NVRTC_ERROR_OUT_OF_MEMORY",
            NvrtcResult.ProgramCreationFailure => "NVRTC_ERROR_PROGRAM_CREATION_FAILURE",
            NvrtcResult.InvalidInput => "NVRTC_ERROR_INVALID_INPUT",
            NvrtcResult.InvalidProgram => "NVRTC_ERROR_INVALID_PROGRAM",
            NvrtcResult.InvalidOption => "NVRTC_ERROR_INVALID_OPTION",
            NvrtcResult.Compilation => "NVRTC_ERROR_COMPILATION",
            NvrtcResult.BuiltinOperationFailure => "NVRTC_ERROR_BUILTIN_OPERATION_FAILURE",
            NvrtcResult.NoNameExpressionsAfterCompilation => "NVRTC_ERROR_NO_NAME_EXPRESSIONS_AFTER_COMPILATION",
            NvrtcResult.NoLoweredNamesBeforeCompilation => "NVRTC_ERROR_NO_LOWERED_NAMES_BEFORE_COMPILATION",
            NvrtcResult.NameExpressionNotValid => "NVRTC_ERROR_NAME_EXPRESSION_NOT_VALID",
            NvrtcResult.InternalError => "NVRTC_ERROR_INTERNAL_ERROR",
            NvrtcResult.TimeFileWriteFailed => "NVRTC_ERROR_TIME_FILE_WRITE_FAILED",
            _ => $"nvrtcResult {(int)status}",
        };

        // nvrtcGetErrorString only returns the enum name, so the text that explains it is ours.
        public static string Describe(NvrtcResult status) => status switch
        {
            NvrtcResult.OutOfMemory => "NVRTC ran out of host memory",
            NvrtcResult.ProgramCreationFailure => "the program could not be created",
            NvrtcResult.InvalidInput => "an argument was invalid",
            NvrtcResult.InvalidProgram => "the program handle is invalid",
            NvrtcResult.InvalidOption => "a compile option was not recognised (see the log)",
            NvrtcResult.Compilation => "the CUDA source did not compile (see the log)",
            NvrtcResult.BuiltinOperationFailure => "NVRTC's builtins library failed (is libnvrtc-builtins installed beside libnvrtc?)",
            NvrtcResult.InternalError => "NVRTC internal error",
            _ => "see nvrtc.h",
        };
    }
}
