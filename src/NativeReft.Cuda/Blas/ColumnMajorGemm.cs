namespace NativeReft.Cuda;

/// <summary>
/// One cublasGemmStridedBatchedEx call in cuBLAS's own column-major terms (fp32 compute): for each batch p,
/// C[p] = Alpha op(A[p]) op(B[p]) + Beta C[p], op(A) (M, K), op(B) (K, N), C (M, N). <see cref="Blas"/> maps its
/// row-major GEMMs onto this; cuBLAS and the emulator's CPU GEMM each run it.
/// </summary>
internal readonly record struct ColumnMajorGemm(
    bool TransposeA, bool TransposeB, int M, int N, int K, float Alpha,
    DevicePointer A, Interop.CudaDataType AType, int Lda, long StrideA,
    DevicePointer B, Interop.CudaDataType BType, int Ldb, long StrideB, float Beta,
    DevicePointer C, Interop.CudaDataType CType, int Ldc, long StrideC, int Batch);
