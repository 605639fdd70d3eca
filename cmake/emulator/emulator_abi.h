// The emulator's C ABI, called from C# (src/NativeReft.Cuda/Interop/Interop.Emulator.cs). Every function that
// can fail returns 0 on success and 1 on failure, with the message in emu_last_error() (per calling thread).
#pragma once

#include <cstddef>

#define EMU_TYPE_F32 0
#define EMU_TYPE_BF16 1

#define EMU_EXPORT extern "C" __attribute__((visibility("default")))

struct dim3;

EMU_EXPORT const char* emu_last_error(void);
EMU_EXPORT void* emu_find_kernel(const char* name);
EMU_EXPORT const char* emu_kernel_file(void* kernel);
EMU_EXPORT int emu_kernel_parameters(void* kernel, int* sizes, int capacity);
EMU_EXPORT int emu_kernel_count(const char* file);
// Runs every block of the kernel and returns when they are done (streams are in order on the caller's thread).
EMU_EXPORT int emu_launch(const char* kernel, dim3 grid, dim3 block, size_t dynamic_shared, void* stream, void** arguments);
EMU_EXPORT int emu_launch_kernel(void* kernel, dim3 grid, dim3 block, size_t dynamic_shared, void* stream, void** arguments);
EMU_EXPORT void emu_set_check(int enabled);
EMU_EXPORT int emu_get_check(void);
EMU_EXPORT int emu_threads(void);
EMU_EXPORT void* emu_alloc(size_t bytes, int guard);
EMU_EXPORT void emu_free(void* pointer);
// cublasGemmStridedBatchedEx with CUBLAS_COMPUTE_32F: column-major, op = transpose when trans is non-zero.
EMU_EXPORT int emu_gemm_strided_batched(int transa, int transb, int m, int n, int k, float alpha, const void* a, int a_type,
    int lda, long long stride_a, const void* b, int b_type, int ldb, long long stride_b, float beta, void* c, int c_type,
    int ldc, long long stride_c, int batch);
