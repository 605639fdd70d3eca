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

The only inline PTX in kernels/: the emulator supplies mma_bf16_16x8x16 itself (a warp collective in
cmake/emulator, same layouts, fp32 sums), so the kernels that use it run in CI. Needs sm_80 or later; the launcher
chooses these kernels only there, and an older target compiles to a trap.
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

// Two bf16 a column apart: address[0] and address[stride].
__device__ __forceinline__ u32 load_bf16x2_strided(const bf16* address, int stride) {
    return pack_bf16x2(address[0], address[stride]);
}

// Fragments from a row-major bf16 tile in shared memory (stride: elements per tile row, even), for the calling
// lane. Every pair read is 4-byte aligned when row0, col0 and the stride are even.

// A[m][k] = tile[row0 + m][col0 + k], m < 16, k < 16.
__device__ __forceinline__ void fragment_a(u32 a[4], const bf16* tile, int stride, int row0, int col0) {
    const int g = (threadIdx.x % WARP_SIZE) / 4, t = threadIdx.x % 4;
    const bf16* top = tile + (row0 + g) * stride + col0 + 2 * t;
    const bf16* bottom = top + 8 * stride;
    a[0] = load_bf16x2(top);
    a[1] = load_bf16x2(bottom);
    a[2] = load_bf16x2(top + 8);
    a[3] = load_bf16x2(bottom + 8);
}

// B[k][n] = tile[row0 + n][col0 + k], k < 16, n < 8: the tile holds B's transpose (keys as rows for q k^T).
__device__ __forceinline__ void fragment_b_rows(u32 b[2], const bf16* tile, int stride, int row0, int col0) {
    const int g = (threadIdx.x % WARP_SIZE) / 4, t = threadIdx.x % 4;
    const bf16* row = tile + (row0 + g) * stride + col0 + 2 * t;
    b[0] = load_bf16x2(row);
    b[1] = load_bf16x2(row + 8);
}

// B[k][n] = tile[row0 + k][col0 + n], k < 16, n < 8: the tile holds B itself (values as rows for p v).
__device__ __forceinline__ void fragment_b_columns(u32 b[2], const bf16* tile, int stride, int row0, int col0) {
    const int g = (threadIdx.x % WARP_SIZE) / 4, t = threadIdx.x % 4;
    const bf16* column = tile + (row0 + 2 * t) * stride + col0 + g;
    b[0] = load_bf16x2_strided(column, stride);
    b[1] = load_bf16x2_strided(column + 8 * stride, stride);
}
