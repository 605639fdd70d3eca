/*
Every inline PTX instruction the kernels use, each behind a function the CPU emulator supplies itself (in
cmake/emulator/cuda_emulation.h; under NATIVEREFT_EMULATOR this file declares nothing), so the kernels that use them
run in CI. All need sm_80 or later: the launchers choose those kernels only there, and an older target compiles
each to a trap.

  mma_bf16_16x8x16(d, a, b)          mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32, d += a b (one warp;
                                     fragment layouts in mma.cuh)
  load_matrix_x4(r, row)             ldmatrix.sync.aligned.m8n8.x4.shared.b16: lanes 8i..8i+7 give the addresses
  load_matrix_x4_transposed(r, row)  of matrix i's eight rows (8 bf16 each, 16-byte aligned, shared memory); lane
                                     l receives in r[i] matrix i's row l / 4, elements 2 (l % 4) and 2 (l % 4) + 1,
                                     or (.trans) its column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1
  copy_async_16(shared, global, valid)  cp.async.cg.shared.global of 16 bytes, zeros when !valid (global not read)
  copy_async_commit()                cp.async.commit_group: the copies issued since the last commit form a group
  copy_async_wait<N>()               cp.async.wait_group N: this thread's groups but the newest N have landed
                                     (other threads' copies are visible after a __syncthreads that follows)

The emulator performs a thread's copies only when a wait covers them, so a tile read before its wait holds stale
data there as it may on a GPU, and the parity suites catch it.
*/
#pragma once

#include "common.cuh"

#ifndef NATIVEREFT_EMULATOR
__device__ __forceinline__ u32 shared_address(const void* pointer) {
    u32 address;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
    return address;
}

__device__ __forceinline__ void mma_bf16_16x8x16(float d[4], const u32 a[4], const u32 b[2]) {
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("trap;");
#endif
}

__device__ __forceinline__ void load_matrix_x4(u32 r[4], const void* row) {
#if __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
#else
    asm volatile("trap;");
#endif
}

__device__ __forceinline__ void load_matrix_x4_transposed(u32 r[4], const void* row) {
#if __CUDA_ARCH__ >= 800
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(shared_address(row)));
#else
    asm volatile("trap;");
#endif
}

__device__ __forceinline__ void copy_async_16(void* shared_destination, const void* global_source, bool valid) {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :
                 : "r"(shared_address(shared_destination)), "l"(global_source), "r"(valid ? 16 : 0)
                 : "memory");
#else
    asm volatile("trap;");
#endif
}

__device__ __forceinline__ void copy_async_commit() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;\n" ::: "memory");
#endif
}

template <int N>
__device__ __forceinline__ void copy_async_wait() {
#if __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;\n" : : "n"(N) : "memory");
#endif
}
#endif
