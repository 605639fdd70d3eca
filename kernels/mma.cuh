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

The instructions themselves (mma.sync, and ldmatrix for the fragments below) are in ptx.cuh, which the emulator
replaces with warp collectives of the same layouts.
*/
#pragma once

#include "common.cuh"
#include "ptx.cuh"

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
