using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace NativeReft.Cuda;

internal static partial class Interop
{
    /// <summary>The cuBLASLt entry points NativeReft uses (cublasLt.h): matmul with heuristics and epilogues.</summary>
    internal static unsafe partial class CublasLt
    {
        static CublasLt() => _ = Libraries.Resolver;

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtCreate(out nint handle);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtDestroy(nint handle);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial nuint cublasLtGetVersion();

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulDescCreate(out nint matmulDesc, CublasComputeType computeType, CudaDataType scaleType);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulDescDestroy(nint matmulDesc);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulDescSetAttribute(nint matmulDesc, LtMatmulDescAttribute attribute, void* value, nuint sizeInBytes);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatrixLayoutCreate(out nint layout, CudaDataType type, ulong rows, ulong columns, long leadingDimension);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatrixLayoutDestroy(nint layout);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulPreferenceCreate(out nint preference);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulPreferenceDestroy(nint preference);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulPreferenceSetAttribute(nint preference, LtPreferenceAttribute attribute, void* value, nuint sizeInBytes);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmulAlgoGetHeuristic(nint handle, nint operationDesc,
            nint aDesc, nint bDesc, nint cDesc, nint dDesc, nint preference,
            int requestedAlgoCount, LtHeuristicResult* results, out int returnedAlgoCount);

        [LibraryImport(Libraries.CublasLt)]
        internal static partial CublasStatus cublasLtMatmul(nint handle, nint computeDesc, void* alpha,
            ulong a, nint aDesc, ulong b, nint bDesc, void* beta,
            ulong c, nint cDesc, ulong d, nint dDesc,
            LtMatmulAlgorithm* algorithm, ulong workspace, nuint workspaceBytes, nint stream);

        /// <summary>Throws <see cref="CudaException"/> unless <paramref name="status"/> is CUBLAS_STATUS_SUCCESS.</summary>
        internal static void Check(CublasStatus status, [CallerArgumentExpression(nameof(status))] string call = "")
        {
            if (status != CublasStatus.Success)
            {
                throw Cublas.Error(CudaLibrary.CublasLt, status, call);
            }
        }
    }

    /// <summary>cublasLtMatmulDescAttributes_t.</summary>
    internal enum LtMatmulDescAttribute
    {
        TransA = 3,
        TransB = 4,
        Epilogue = 7,
        BiasPointer = 8,
    }

    /// <summary>cublasLtMatmulPreferenceAttributes_t.</summary>
    internal enum LtPreferenceAttribute
    {
        MaxWorkspaceBytes = 1,
    }

    /// <summary>cublasLtMatmulAlgo_t: 8 opaque 64-bit words.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct LtMatmulAlgorithm
    {
        public fixed ulong Data[8];
    }

    /// <summary>cublasLtMatmulHeuristicResult_t.</summary>
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct LtHeuristicResult
    {
        public LtMatmulAlgorithm Algorithm;
        public nuint WorkspaceSize;
        public CublasStatus State;
        public float WavesCount;
        public fixed int Reserved[4];
    }
}
