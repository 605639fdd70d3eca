/*
The tensor-core instruction, for kernels that tile a matrix product over warps (flash_attention.cu):

  mma_bf16_16x8x16(d, a, b)   d += a b   for one warp; a 16x16 bf16 (row major), b 16x8 bf16 (column major),
                                         d 16x8 fp32: PTX mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32

Fragments (PTX ISA, "Matrix Fragments for mma.m16n8k16 with floating point type"), g = lane / 4, t = lane % 4,
two bf16 per u32 with the lower column (row for b) in the low 16 bits:

  a[0] = A[g][2t, 2t+1]   a[1] = A[g+8][2t, 2t+1]   a[2] = A[g][2t+8, 2t+9]   a[3] = A[g+8][2t+8, 2t+9]
  b[0] = B[2t, 2t+1][g]   b[1] = B[2t+8, 2t+9][g]
  d[0], d[1] = D[g][2t, 2t+1]                       d[2], d[3] = D[g+8][2t, 2t+1]

The accumulator layout of two neighbouring 16x8 tiles is the A layout of one 16x16 tile, so a product's result
feeds the next product from registers (pack_bf16x2 of d[0], d[1] and of d[2], d[3]).

The only inline PTX in kernels/ (mma, and ldmatrix for the fragments below): the emulator supplies
mma_bf16_16x8x16 and load_matrix_x4(_transposed) itself (warp collectives in cmake/emulator, same layouts, fp32
sums), so the kernels that use them run in CI. Needs sm_80 or later; the launcher chooses these kernels only there,
and an older target compiles to a trap.
*/
#pragma once

#include "common.cuh"

#ifndef NATIVEREFT_EMULATOR
__device__ __forceinline__ void mma_bf16_16x8x16(float d[4], const u32 a[4], const u32 b[2]) {
#if __CUDA_ARCH__ >= 800
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    asm volatile("trap;");
#endif
}
#endif

// Two bf16 in one register, lo in the low half: one element pair of a fragment.
__device__ __forceinline__ u32 pack_bf16x2(bf16 lo, bf16 hi) {
    return (u32)lo.bits | ((u32)hi.bits << 16);
}

__device__ __forceinline__ u32 pack_floats_bf16x2(float lo, float hi) {
    return pack_bf16x2(float_to_bf16(lo), float_to_bf16(hi));
}

// Two consecutive bf16 (4-byte aligned) as one register.
__device__ __forceinline__ u32 load_bf16x2(const bf16* address) {
    return *reinterpret_cast<const u32*>(address);
}

// ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8i..8i+7 give the addresses of matrix i's eight rows
// (8 bf16 each, 16-byte aligned, in shared memory); lane l receives in r[i] matrix i's row l / 4, elements
// 2 (l % 4) and 2 (l % 4) + 1, or with .trans its column l / 4, rows 2 (l % 4) and 2 (l % 4) + 1. One instruction
// loads a whole A fragment, or the B fragments of two neighbouring n-tiles, at the bank throughput of a
// 128-bit load.
#ifndef NATIVEREFT_EMULATOR
__device__ __forceinline__ u32 shared_address(const void* pointer) {
    u32 address;
    asm("{ .reg .u64 a; cvta.to.shared.u64 a, %1; cvt.u32.u64 %0, a; }" : "=r"(address) : "l"(pointer));
    return address;
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
#endif

// Fragments from a row-major bf16 tile in shared memory (stride: elements per tile row, a multiple of 8 so that
// every row a lane addresses is 16-byte aligned; row0, col0 multiples of 8), for the calling warp.

// A[m][k] = tile[row0 + m][col0 + k], m < 16, k < 16: matrices (rows 0-7, cols 0-7), (8-15, 0-7), (0-7, 8-15),
// (8-15, 8-15) are a[0..3].
__device__ __forceinline__ void fragment_a(u32 a[4], const bf16* tile, int stride, int row0, int col0) {
    const int lane = threadIdx.x % WARP_SIZE;
    load_matrix_x4(a, tile + (row0 + lane % 16) * stride + col0 + (lane / 16) * 8);
}

// The B fragments of two n-tiles when the tile holds B's transpose (keys as rows for q k^T):
// B[k][n] = tile[row0 + n][col0 + k] for n < 8 (b0) and 8 <= n < 16 (b1), k < 16.
__device__ __forceinline__ void fragment_b_rows(u32 b0[2], u32 b1[2], const bf16* tile, int stride, int row0, int col0) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int matrix = lane / 8;
    u32 r[4];
    load_matrix_x4(r, tile + (row0 + lane % 8 + (matrix / 2) * 8) * stride + col0 + (matrix % 2) * 8);
    b0[0] = r[0];
    b0[1] = r[1];
    b1[0] = r[2];
    b1[1] = r[3];
}

// The B fragments of two n-tiles when the tile holds B itself (values as rows for p v):
// B[k][n] = tile[row0 + k][col0 + n] for n < 8 (b0) and 8 <= n < 16 (b1), k < 16.
__device__ __forceinline__ void fragment_b_columns(u32 b0[2], u32 b1[2], const bf16* tile, int stride, int row0, int col0) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int matrix = lane / 8;
    u32 r[4];
    load_matrix_x4_transposed(r, tile + (row0 + lane % 8 + (matrix % 2) * 8) * stride + col0 + (matrix / 2) * 8);
    b0[0] = r[0];
    b0[1] = r[1];
    b1[0] = r[2];
    b1[1] = r[3];
}
