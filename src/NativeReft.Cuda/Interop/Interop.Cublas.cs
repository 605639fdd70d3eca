using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>The cuBLAS entry points NativeReft uses (cublas_api.h). cuBLAS is column-major.</summary>
    internal static unsafe partial class Cublas
    {
        static Cublas() => _ = Libraries.Resolver;

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasCreate_v2(out nint handle);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasDestroy_v2(nint handle);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasGetProperty(LibraryProperty type, out int value);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasSetStream_v2(nint handle, nint stream);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasSetWorkspace_v2(nint handle, ulong workspace, nuint workspaceBytes);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasGemmEx(nint handle, CublasOperation transa, CublasOperation transb,
            int m, int n, int k, void* alpha,
            ulong a, CudaDataType aType, int lda,
            ulong b, CudaDataType bType, int ldb, void* beta,
            ulong c, CudaDataType cType, int ldc,
            CublasComputeType computeType, CublasGemmAlgorithm algorithm);

        [LibraryImport(Libraries.Cublas)]
        internal static partial CublasStatus cublasGemmStridedBatchedEx(nint handle, CublasOperation transa, CublasOperation transb,
            int m, int n, int k, void* alpha,
            ulong a, CudaDataType aType, int lda, long strideA,
            ulong b, CudaDataType bType, int ldb, long strideB, void* beta,
            ulong c, CudaDataType cType, int ldc, long strideC,
            int batchCount, CublasComputeType computeType, CublasGemmAlgorithm algorithm);

        /// <summary>Throws <see cref="CudaException"/> unless <paramref name="status"/> is CUBLAS_STATUS_SUCCESS.</summary>
        internal static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
        {
            if (status != CublasStatus.Success)
            {
                throw Error(CudaLibrary.Cublas, status, call);
            }
        }

        internal static CudaException Error(CudaLibrary library, CublasStatus status, string call)
        {
            var (name, text) = ErrorTable.Describe(status);
            return new CudaException(library, call, (int)status, name, text);
        }
    }

    /// <summary>cublasStatus_t (cublas_api.h), shared by cuBLAS and cuBLASLt.</summary>
    internal enum CublasStatus
    {
        Success = 0,
        NotInitialized = 1,
        AllocFailed = 3,
        InvalidValue = 7,
        ArchMismatch = 8,
        MappingError = 11,
        ExecutionFailed = 13,
        InternalError = 14,
        NotSupported = 15,
        LicenseError = 16,
    }

    /// <summary>cublasOperation_t.</summary>
    internal enum CublasOperation
    {
        None = 0,
        Transpose = 1,
    }

    /// <summary>cublasComputeType_t: the accumulator type.</summary>
    internal enum CublasComputeType
    {
        Compute32F = 68,
        Compute32FPedantic = 69,
    }

    /// <summary>cublasGemmAlgo_t.</summary>
    internal enum CublasGemmAlgorithm
    {
        Default = -1,
    }

    /// <summary>cudaDataType (library_types.h).</summary>
    internal enum CudaDataType
    {
        R32F = 0,
        R64F = 1,
        R16F = 2,
        R16BF = 14,
    }

    /// <summary>libraryPropertyType (library_types.h).</summary>
    internal enum LibraryProperty
    {
        MajorVersion = 0,
        MinorVersion = 1,
        PatchLevel = 2,
    }

    internal static partial class ErrorTable
    {
        public static (string Name, string Text) Describe(CublasStatus status) => status switch
        {
            CublasStatus.Success => ("CUBLAS_STATUS_SUCCESS", "success"),
            CublasStatus.NotInitialized => ("CUBLAS_STATUS_NOT_INITIALIZED", "the library was not initialized (no usable GPU or context?)"),
            CublasStatus.AllocFailed => ("CUBLAS_STATUS_ALLOC_FAILED", "resource allocation failed"),
            CublasStatus.InvalidValue => ("CUBLAS_STATUS_INVALID_VALUE", "an unsupported value or parameter was passed"),
            CublasStatus.ArchMismatch => ("CUBLAS_STATUS_ARCH_MISMATCH", "the GPU lacks a feature the call needs"),
            CublasStatus.MappingError => ("CUBLAS_STATUS_MAPPING_ERROR", "access to GPU memory space failed"),
            CublasStatus.ExecutionFailed => ("CUBLAS_STATUS_EXECUTION_FAILED", "the GPU program failed to execute"),
            CublasStatus.InternalError => ("CUBLAS_STATUS_INTERNAL_ERROR", "an internal cuBLAS operation failed"),
            CublasStatus.NotSupported => ("CUBLAS_STATUS_NOT_SUPPORTED", "the functionality requested is not supported"),
            CublasStatus.LicenseError => ("CUBLAS_STATUS_LICENSE_ERROR", "license error"),
            _ => ($"cublasStatus_t {(int)status}", "see cublas_api.h"),
        };
    }
}
