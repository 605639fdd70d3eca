/*
Causal grouped-query attention on tensor cores, forward and backward, for head sizes 64 and 128: FlashAttention-2's
tiling with mma.m16n8k16 (mma.cuh). Same formulas, masks, KV-cache layout, shapes and gradient rule as
attention.cu (read its header); the launcher (AttentionKernels) picks these kernels on sm_80+ (and the emulator)
for those head sizes, at least 16 queries and a device whose blocks can have the shared memory below, and
attention.cu's kernels otherwise.

  flash_attention_forward_hs*       out, lse (optional)
  flash_attention_backward_dq_hs*   dq, and the statistics lse_i, D_i in scratch (the layout attention.cu uses)
  flash_attention_backward_dq_saved_hs*  the same from the forward's lse (already in scratch) and output:
                                    D_i = dO_i . out_i instead of a pass over the keys (3 products per tile, not 5)
  flash_attention_backward_dkv_hs*  dk, dv from the statistics (p and dS recomputed)

Work: a block is 8 warps. Forward and dq: a block owns 128 query rows of one (sequence, head), 16 per warp, and
walks the keys it may see in tiles (forward 64, dq 32 keys) staged in shared memory; the warp keeps its q (and
dO) rows as A fragments in registers, its output accumulators as C fragments. Scores come out of one product in the
accumulator layout and go into the next as an A fragment (mma.cuh), so p never leaves registers. dk/dv: a block
owns 128 key rows of one (sequence, KV head) in shared memory, 16 per warp, and walks the group's query heads and
their queries in tiles of 32, accumulating dk and dv in registers: no atomics, a fixed order, the same bits on
every run.

Numerics (what differs from attention.cu): the operands of each product are bf16 (q, k, v, dO are already bf16;
p and dS are rounded to bf16 before p v, dS k, p^T dO, dS^T q, as FlashAttention does), products accumulate in
fp32 in the tensor core's order. Softmax statistics (m, l, lse, D) are fp32 from the unrounded scores, as in
attention.cu; D = sum_j p_j dP_j is computed online in the dq kernel's first pass, or (the _saved variant) taken
as dO . out from the forward's output.

Shared memory (bf16, each row padded by 8 elements, 16 bytes, so that the 8 rows an ldmatrix reads fall in
different banks). Tiles stream through two buffers by cp.async (ptx.cuh; for_each_tile below): the next tile
lands while the block computes on the current one. Forward: two buffers of a 64-row key and value tile (256 rows,
the first 128 also stage q); dq: 128 rows (q and dO staging, then two buffers of 32-row key and value tiles);
dk/dv: the block's 128 key and 128 value rows and two buffers of 32-row q and dO tiles (384 rows). At head size
128: 68, 34 and 102 KiB (the launcher opts in above 48 KiB). Requires q, k, v, dO, out, dq, dk, dv 16-byte
aligned (the launcher checks).
*/
#include "common.cuh"
#include "attention.cuh"
#include "mma.cuh"

#define FLASH_WARPS 8
#define FLASH_ROWS 16        // rows per warp: the mma's M
#define FLASH_BLOCK_ROWS (FLASH_WARPS * FLASH_ROWS) // 128: each staged key (query) tile serves 128 rows
#define FLASH_KEYS 64        // keys per tile, forward
#define FLASH_DQ_KEYS 32     // keys per tile, dq (two products per tile: fewer live registers)
#define FLASH_QUERIES 32     // queries per tile, dk/dv
#define FLASH_PAD 8          // bf16 of padding after each shared row

// Stages rows [first, first + rows) of a (.., HS) slice of a row-major bf16 matrix (row pitch `pitch` elements)
// into a shared tile, zero-filling rows at or past `valid` (the keys past KeyLength, the queries past Tq), which
// are never read from global memory. All threads of the block take part.
template <int HS>
__device__ __forceinline__ void load_tile(bf16* tile, int rows, const bf16* source, i64 pitch, int first, int valid) {
    constexpr int pieces = HS / 8; // 16-byte pieces per row
    for (int c = threadIdx.x; c < rows * pieces; c += blockDim.x) {
        const int r = c / pieces;
        const int piece = c - r * pieces;
        Packed128<bf16> value;
        if (first + r < valid) {
            value = load128(source + (i64)(first + r) * pitch + piece * 8);
        } else {
            UNROLL
            for (int e = 0; e < value.size; e++) {
                value[e].bits = 0;
            }
        }
        store128(tile + r * (HS + FLASH_PAD) + piece * 8, value);
    }
}

// The same staging through cp.async for two tiles at once (keys and values, or queries and their dO: the same rows
// of two matrices of one layout), committed as one group: the copies land while the block computes on the other
// buffer (see for_each_tile). Rows at or past `valid` are zero-filled without reading global memory.
template <int HS, int ROWS>
__device__ __forceinline__ void stage_tiles_async(bf16* first_tile, const bf16* first_source, const bf16* second_source,
                                                  i64 pitch, int first, int valid) {
    constexpr int pieces = HS / 8;
    bf16* second_tile = first_tile + ROWS * (HS + FLASH_PAD);
    for (int c = threadIdx.x; c < ROWS * pieces; c += blockDim.x) {
        const int r = c / pieces;
        const int piece = c - r * pieces;
        const bool in_range = first + r < valid;
        const i64 offset = in_range ? (i64)(first + r) * pitch + piece * 8 : 0; // a zero-fill reads nothing
        const int shared_offset = r * (HS + FLASH_PAD) + piece * 8;
        copy_async_16(first_tile + shared_offset, first_source + offset, in_range);
        copy_async_16(second_tile + shared_offset, second_source + offset, in_range);
    }
    copy_async_commit();
}

// Runs body(t, buffer) for tiles t = 0 .. tiles-1, double-buffered: stage(t, buffer) issues tile t's copies into
// buffer t % 2 (stage_tiles_async), and tile t + 1 is in flight while the block computes on tile t. Barriers:
// after the wait (every thread's copies of tile t have landed) and after the body (every warp is done with the
// buffer before it is refilled). All threads of the block call it; body must not skip the barriers (no return).
template <typename Stage, typename Body>
__device__ __forceinline__ void for_each_tile(int tiles, Stage stage, Body body) {
    if (tiles > 0) {
        stage(0, 0);
    }
    for (int t = 0; t < tiles; t++) {
        if (t + 1 < tiles) {
            stage(t + 1, (t + 1) & 1);
            copy_async_wait<1>();
        } else {
            copy_async_wait<0>();
        }
        __syncthreads();
        body(t, t & 1);
        __syncthreads();
    }
}

// s = a b^T for the warp's 16 rows (A fragments, HS wide) and the tile's COLS rows: s[n] holds columns 8n..8n+7.
template <int HS, int COLS>
__device__ __forceinline__ void tile_products(float s[COLS / 8][4], const u32 a[HS / 16][4], const bf16* tile) {
    UNROLL
    for (int n = 0; n < COLS / 8; n++) {
        UNROLL
        for (int c = 0; c < 4; c++) {
            s[n][c] = 0.0f;
        }
    }
    UNROLL
    for (int kk = 0; kk < HS / 16; kk++) {
        UNROLL
        for (int n = 0; n < COLS / 8; n += 2) {
            u32 b0[2];
            u32 b1[2];
            fragment_b_rows(b0, b1, tile, HS + FLASH_PAD, n * 8, kk * 16);
            mma_bf16_16x8x16(s[n], a[kk], b0);
            mma_bf16_16x8x16(s[n + 1], a[kk], b1);
        }
    }
}

// acc += p x for p in the accumulator layout (16 rows, K columns, rounded to bf16 here) and the tile's K rows of
// HS: acc[dn] holds output columns 8dn..8dn+7.
template <int HS, int K>
__device__ __forceinline__ void accumulate_products(float acc[HS / 8][4], const float p[K / 8][4], const bf16* tile) {
    UNROLL
    for (int kk = 0; kk < K / 16; kk++) {
        const u32 a[4] = {pack_floats_bf16x2(p[2 * kk][0], p[2 * kk][1]), pack_floats_bf16x2(p[2 * kk][2], p[2 * kk][3]),
                          pack_floats_bf16x2(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                          pack_floats_bf16x2(p[2 * kk + 1][2], p[2 * kk + 1][3])};
        UNROLL
        for (int dn = 0; dn < HS / 8; dn += 2) {
            u32 b0[2];
            u32 b1[2];
            fragment_b_columns(b0, b1, tile, HS + FLASH_PAD, kk * 16, dn * 8);
            mma_bf16_16x8x16(acc[dn], a, b0);
            mma_bf16_16x8x16(acc[dn + 1], a, b1);
        }
    }
}

// A row's value over the 4 lanes that share it (lanes 4g .. 4g+3).
__device__ __forceinline__ float quad_max(float v) {
    v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, 1));
    return fmaxf(v, __shfl_xor_sync(FULL_MASK, v, 2));
}

__device__ __forceinline__ float quad_sum(float v) {
    v += __shfl_xor_sync(FULL_MASK, v, 1);
    return v + __shfl_xor_sync(FULL_MASK, v, 2);
}

// Where element c of a lane's accumulator fragment sits: row (0..15) and column (0..7) within a 16x8 tile.
__device__ __forceinline__ int fragment_row(int c) { return (threadIdx.x % WARP_SIZE) / 4 + (c >= 2 ? 8 : 0); }
__device__ __forceinline__ int fragment_column(int c) { return 2 * (threadIdx.x % 4) + (c & 1); }

// The (sequence, head) slices a forward or dq block works on.
struct QueryBlock {
    int head;
    int query0;      // the warp's first query row within the sequence
    int block_keys;  // keys [0, block_keys) may be seen by some query of the block
    int warp_keys;   // ... by some query of the warp
    i64 q_width;
    i64 kv_width;
    const bf16* q;   // the sequence's row 0 at the head's columns (dO, out, dq alike: same layout)
    i64 q_offset;    // q - (the tensor's base)
    const bf16* k;   // the sequence's key row 0 at the KV head's columns
    const bf16* v;
    const unsigned char* mask; // the sequence's mask bytes, or null
};

template <int HS>
__device__ __forceinline__ QueryBlock query_block(const bf16* q, const bf16* k, const bf16* v,
                                                  const unsigned char* mask, const AttentionDims& dims) {
    QueryBlock qb;
    const int b = blockIdx.y / dims.heads;
    qb.head = blockIdx.y - b * dims.heads;
    const int kv_head = qb.head / (dims.heads / dims.kv_heads);
    qb.q_width = (i64)dims.heads * HS;
    qb.kv_width = (i64)dims.kv_heads * HS;
    qb.q_offset = (i64)b * dims.query_length * qb.q_width + (i64)qb.head * HS;
    qb.q = q + qb.q_offset;
    const i64 key_offset = (i64)b * dims.key_stride * qb.kv_width + (i64)kv_head * HS;
    qb.k = k + key_offset;
    qb.v = v + key_offset;
    qb.mask = mask == nullptr ? nullptr : mask + (i64)b * dims.key_stride;
    const int block_query0 = blockIdx.x * FLASH_BLOCK_ROWS;
    qb.query0 = block_query0 + (threadIdx.x / WARP_SIZE) * FLASH_ROWS;
    const int block_last = min(block_query0 + FLASH_BLOCK_ROWS, dims.query_length) - 1;
    const int warp_last = min(qb.query0 + FLASH_ROWS, dims.query_length) - 1; // < query0 for a warp past Tq
    qb.block_keys = min(dims.key_length, dims.query_offset + block_last + 1);
    qb.warp_keys = warp_last < qb.query0 ? 0 : min(dims.key_length, dims.query_offset + warp_last + 1);
    return qb;
}

// Scales the tile's scores and masks the keys a row does not see (-inf); returns nothing, updates s in place.
template <int COLS>
__device__ __forceinline__ void scale_and_mask(float s[COLS / 8][4], int query0, int key0, const unsigned char* mask,
                                               const AttentionDims& dims) {
    UNROLL
    for (int n = 0; n < COLS / 8; n++) {
        UNROLL
        for (int c = 0; c < 4; c++) {
            const int i = query0 + fragment_row(c);
            const int j = key0 + n * 8 + fragment_column(c);
            s[n][c] = key_visible(i, j, mask, dims) ? s[n][c] * dims.scale : negative_infinity();
        }
    }
}

// The online softmax's step for one tile: the new running max of each of the lane's two rows (m), the factor that
// rescales what was accumulated under the old max (alpha), and s replaced by exp(s - max) (0 where masked).
template <int COLS>
__device__ __forceinline__ void softmax_step(float s[COLS / 8][4], float m[2], float alpha[2]) {
    float tile_max[2] = {negative_infinity(), negative_infinity()};
    UNROLL
    for (int n = 0; n < COLS / 8; n++) {
        UNROLL
        for (int c = 0; c < 4; c++) {
            tile_max[c / 2] = fmaxf(tile_max[c / 2], s[n][c]);
        }
    }
    float base[2];
    UNROLL
    for (int r = 0; r < 2; r++) {
        const float new_max = fmaxf(m[r], quad_max(tile_max[r]));
        base[r] = new_max == negative_infinity() ? 0.0f : new_max; // a row that saw nothing yet: exp(-inf) = 0
        alpha[r] = __expf(m[r] - base[r]);
        m[r] = new_max;
    }
    UNROLL
    for (int n = 0; n < COLS / 8; n++) {
        UNROLL
        for (int c = 0; c < 4; c++) {
            s[n][c] = __expf(s[n][c] - base[c / 2]);
        }
    }
}

template <int HS>
__device__ __forceinline__ void flash_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                              const unsigned char* mask, const AttentionDims& dims) {
    constexpr int stride = HS + FLASH_PAD;
    bf16* tiles = dynamic_shared<bf16>(); // two buffers of a key and a value tile (256 rows)
    const int warp = threadIdx.x / WARP_SIZE;
    const QueryBlock qb = query_block<HS>(q, k, v, mask, dims);

    // The warp's q rows as A fragments, staged through the first 128 rows.
    load_tile<HS>(tiles, FLASH_BLOCK_ROWS, qb.q, qb.q_width, blockIdx.x * FLASH_BLOCK_ROWS, dims.query_length);
    __syncthreads();
    u32 qa[HS / 16][4];
    UNROLL
    for (int kk = 0; kk < HS / 16; kk++) {
        fragment_a(qa[kk], tiles, stride, warp * FLASH_ROWS, kk * 16);
    }

    float o[HS / 8][4] = {};
    float m[2] = {negative_infinity(), negative_infinity()};
    float l[2] = {0.0f, 0.0f}; // this lane's part of each row's sum (the row's 4 lanes are summed at the end)
    __syncthreads(); // every warp has its q fragments: the region is the key and value buffers from here
    const auto stage = [&](int t, int buffer) {
        stage_tiles_async<HS, FLASH_KEYS>(tiles + buffer * 2 * FLASH_KEYS * stride, qb.k, qb.v, qb.kv_width, t * FLASH_KEYS,
                                          dims.key_length);
    };
    for_each_tile((qb.block_keys + FLASH_KEYS - 1) / FLASH_KEYS, stage, [&](int t, int buffer) {
        const int key0 = t * FLASH_KEYS;
        if (key0 >= qb.warp_keys) {
            return; // no query of this warp sees the tile (warp-uniform)
        }
        const bf16* k_tile = tiles + buffer * 2 * FLASH_KEYS * stride;
        const bf16* v_tile = k_tile + FLASH_KEYS * stride;
        float s[FLASH_KEYS / 8][4];
        tile_products<HS, FLASH_KEYS>(s, qa, k_tile);
        scale_and_mask<FLASH_KEYS>(s, qb.query0, key0, qb.mask, dims);
        float alpha[2];
        softmax_step<FLASH_KEYS>(s, m, alpha);
        UNROLL
        for (int c = 0; c < 4; c++) {
            UNROLL
            for (int dn = 0; dn < HS / 8; dn++) {
                o[dn][c] *= alpha[c / 2];
            }
        }
        UNROLL
        for (int r = 0; r < 2; r++) {
            l[r] *= alpha[r];
        }
        UNROLL
        for (int n = 0; n < FLASH_KEYS / 8; n++) {
            UNROLL
            for (int c = 0; c < 4; c++) {
                l[c / 2] += s[n][c];
            }
        }
        accumulate_products<HS, FLASH_KEYS>(o, s, v_tile);
    });

    UNROLL
    for (int r = 0; r < 2; r++) {
        const float sum = quad_sum(l[r]);
        const int i = qb.query0 + fragment_row(2 * r);
        if (i >= dims.query_length) {
            continue;
        }
        const float inverse = sum > 0.0f ? 1.0f / sum : 0.0f; // no visible key: zeros
        bf16* row = out + qb.q_offset + (i64)i * qb.q_width + fragment_column(0);
        UNROLL
        for (int dn = 0; dn < HS / 8; dn++) {
            *reinterpret_cast<u32*>(row + dn * 8) = pack_floats_bf16x2(o[dn][2 * r] * inverse, o[dn][2 * r + 1] * inverse);
        }
        if (lse != nullptr && threadIdx.x % 4 == 0) {
            const i64 item = ((i64)(blockIdx.y / dims.heads) * dims.query_length + i) * dims.heads + qb.head;
            lse[item] = sum > 0.0f ? m[r] + logf(sum) : negative_infinity();
        }
    }
}

// D_i = dO_i . out_i for the lane's two rows, from the dO A fragments and the forward's output (global memory,
// the same element pairs; rows at or past `rows` are not read): the saved-statistics path's replacement for the
// first pass.
template <int HS>
__device__ __forceinline__ void output_deltas(float delta[2], const u32 da[HS / 16][4], const bf16* out_rows, i64 q_width,
                                              int rows) {
    const bf16* top = out_rows + (i64)fragment_row(0) * q_width + fragment_column(0);
    const bf16* bottom = top + 8 * q_width;
    const bool has_top = fragment_row(0) < rows;
    const bool has_bottom = fragment_row(2) < rows;
    float sum[2] = {0.0f, 0.0f};
    UNROLL
    for (int kk = 0; kk < HS / 16; kk++) {
        const u32 o[4] = {has_top ? load_bf16x2(top + kk * 16) : 0u, has_bottom ? load_bf16x2(bottom + kk * 16) : 0u,
                          has_top ? load_bf16x2(top + kk * 16 + 8) : 0u, has_bottom ? load_bf16x2(bottom + kk * 16 + 8) : 0u};
        UNROLL
        for (int e = 0; e < 4; e++) {
            const float lo = __uint_as_float(da[kk][e] << 16) * __uint_as_float(o[e] << 16);
            const float hi = __uint_as_float(da[kk][e] & 0xffff0000u) * __uint_as_float(o[e] & 0xffff0000u);
            sum[e % 2] += lo + hi; // a[0], a[2]: row g; a[1], a[3]: row g + 8
        }
    }
    delta[0] = quad_sum(sum[0]);
    delta[1] = quad_sum(sum[1]);
}

// The dq kernel's walk over the key tiles the block may see (both passes): for each tile the warp's rows see,
// s = q k^T scaled and masked and dp = dO v^T for its 16 rows, then body(s, dp, key tile).
template <int HS, typename Stage, typename Body>
__device__ __forceinline__ void for_each_dq_tile(const u32 qa[HS / 16][4], const u32 da[HS / 16][4], const bf16* tiles,
                                                 Stage stage, const QueryBlock& qb, const AttentionDims& dims, Body body) {
    constexpr int stride = HS + FLASH_PAD;
    for_each_tile((qb.block_keys + FLASH_DQ_KEYS - 1) / FLASH_DQ_KEYS, stage, [&](int t, int buffer) {
        const int key0 = t * FLASH_DQ_KEYS;
        if (key0 >= qb.warp_keys) {
            return; // no query of this warp sees the tile (warp-uniform)
        }
        const bf16* k_tile = tiles + buffer * 2 * FLASH_DQ_KEYS * stride;
        float s[FLASH_DQ_KEYS / 8][4];
        float dp[FLASH_DQ_KEYS / 8][4];
        tile_products<HS, FLASH_DQ_KEYS>(s, qa, k_tile);
        tile_products<HS, FLASH_DQ_KEYS>(dp, da, k_tile + FLASH_DQ_KEYS * stride);
        scale_and_mask<FLASH_DQ_KEYS>(s, qb.query0, key0, qb.mask, dims);
        body(s, dp, k_tile);
    });
}

// The dq kernel's first pass without saved statistics: m and l as in forward, and n = sum_j exp(s_j - m) dP_j
// online, so that D = n / l; returns lse and D for the lane's two rows. Walks the key tiles through the two
// buffers at `tiles` (all threads of the block take part).
template <int HS, typename Stage>
__device__ __forceinline__ void flash_softmax_statistics(float log_sum[2], float delta[2], const u32 qa[HS / 16][4],
                                                         const u32 da[HS / 16][4], const bf16* tiles, Stage stage,
                                                         const QueryBlock& qb, const AttentionDims& dims) {
    float m[2] = {negative_infinity(), negative_infinity()};
    float l[2] = {0.0f, 0.0f};
    float n_sum[2] = {0.0f, 0.0f};
    for_each_dq_tile<HS>(qa, da, tiles, stage, qb, dims, [&](float s[FLASH_DQ_KEYS / 8][4], float dp[FLASH_DQ_KEYS / 8][4], const bf16*) {
        float alpha[2];
        softmax_step<FLASH_DQ_KEYS>(s, m, alpha);
        UNROLL
        for (int r = 0; r < 2; r++) {
            l[r] *= alpha[r];
            n_sum[r] *= alpha[r];
        }
        UNROLL
        for (int n = 0; n < FLASH_DQ_KEYS / 8; n++) {
            UNROLL
            for (int c = 0; c < 4; c++) {
                l[c / 2] += s[n][c];
                n_sum[c / 2] += s[n][c] * dp[n][c];
            }
        }
    });
    UNROLL
    for (int r = 0; r < 2; r++) {
        const float sum = quad_sum(l[r]);
        const float n_total = quad_sum(n_sum[r]);
        log_sum[r] = sum > 0.0f ? m[r] + logf(sum) : negative_infinity();
        delta[r] = sum > 0.0f ? n_total / sum : 0.0f;
    }
}

// SAVED: stats already holds the forward's lse and out is the forward's output, so the first pass (m, l and D over
// every key: two products per tile) is replaced by reading lse and D = dO . out. Otherwise out is unused.
template <int HS, bool SAVED>
__device__ __forceinline__ void flash_backward_dq(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                  const unsigned char* mask, const bf16* dout, const bf16* out,
                                                  const AttentionDims& dims) {
    constexpr int stride = HS + FLASH_PAD;
    bf16* tiles = dynamic_shared<bf16>(); // 128 rows: the q, dO staging, then two buffers of a key and a value tile
    const int warp = threadIdx.x / WARP_SIZE;
    const QueryBlock qb = query_block<HS>(q, k, v, mask, dims);

    // q, then dO rows as A fragments, staged through the block's 128 rows of shared memory.
    const int block_query0 = blockIdx.x * FLASH_BLOCK_ROWS;
    u32 qa[HS / 16][4];
    u32 da[HS / 16][4];
    load_tile<HS>(tiles, FLASH_BLOCK_ROWS, qb.q, qb.q_width, block_query0, dims.query_length);
    __syncthreads();
    UNROLL
    for (int kk = 0; kk < HS / 16; kk++) {
        fragment_a(qa[kk], tiles, stride, warp * FLASH_ROWS, kk * 16);
    }
    __syncthreads();
    load_tile<HS>(tiles, FLASH_BLOCK_ROWS, dout + qb.q_offset, qb.q_width, block_query0, dims.query_length);
    __syncthreads();
    UNROLL
    for (int kk = 0; kk < HS / 16; kk++) {
        fragment_a(da[kk], tiles, stride, warp * FLASH_ROWS, kk * 16);
    }
    __syncthreads(); // every warp has its fragments: the region is the key and value buffers from here
    const auto stage = [&](int t, int buffer) {
        stage_tiles_async<HS, FLASH_DQ_KEYS>(tiles + buffer * 2 * FLASH_DQ_KEYS * stride, qb.k, qb.v, qb.kv_width,
                                             t * FLASH_DQ_KEYS, dims.key_length);
    };

    float log_sum[2];
    float delta[2];
    const i64 items = (i64)dims.batch * dims.query_length * dims.heads; // D follows lse in stats
    const i64 item0 = ((i64)(blockIdx.y / dims.heads) * dims.query_length + qb.query0) * dims.heads + qb.head;
    if constexpr (SAVED) {
        output_deltas<HS>(delta, da, out + qb.q_offset + (i64)qb.query0 * qb.q_width, qb.q_width,
                          dims.query_length - qb.query0);
        UNROLL
        for (int r = 0; r < 2; r++) {
            const int i = qb.query0 + fragment_row(2 * r);
            const i64 item = item0 + (i64)fragment_row(2 * r) * dims.heads;
            log_sum[r] = i < dims.query_length ? stats[item] : negative_infinity();
            if (log_sum[r] == negative_infinity()) {
                delta[r] = 0.0f; // a query that sees no key (its output is zeros anyway)
            }
            if (i < dims.query_length && threadIdx.x % 4 == 0) {
                stats[items + item] = delta[r];
            }
        }
    } else {
        flash_softmax_statistics<HS>(log_sum, delta, qa, da, tiles, stage, qb, dims);
        UNROLL
        for (int r = 0; r < 2; r++) {
            const int i = qb.query0 + fragment_row(2 * r);
            if (i < dims.query_length && threadIdx.x % 4 == 0) {
                const i64 item = item0 + (i64)fragment_row(2 * r) * dims.heads;
                stats[item] = log_sum[r];
                stats[items + item] = delta[r];
            }
        }
    }

    // Pass 2: dS = p (dP - D), dq += dS k.
    float acc[HS / 8][4] = {};
    for_each_dq_tile<HS>(qa, da, tiles, stage, qb, dims, [&](float s[FLASH_DQ_KEYS / 8][4], float dp[FLASH_DQ_KEYS / 8][4], const bf16* k_tile) {
        UNROLL
        for (int n = 0; n < FLASH_DQ_KEYS / 8; n++) {
            UNROLL
            for (int c = 0; c < 4; c++) {
                const float p = log_sum[c / 2] == negative_infinity() ? 0.0f : __expf(s[n][c] - log_sum[c / 2]);
                s[n][c] = p * (dp[n][c] - delta[c / 2]);
            }
        }
        accumulate_products<HS, FLASH_DQ_KEYS>(acc, s, k_tile);
    });

    UNROLL
    for (int r = 0; r < 2; r++) {
        const int i = qb.query0 + fragment_row(2 * r);
        if (i >= dims.query_length) {
            continue;
        }
        bf16* row = dq + qb.q_offset + (i64)i * qb.q_width + fragment_column(0);
        UNROLL
        for (int dn = 0; dn < HS / 8; dn++) {
            *reinterpret_cast<u32*>(row + dn * 8) =
                pack_floats_bf16x2(dims.scale * acc[dn][2 * r], dims.scale * acc[dn][2 * r + 1]);
        }
    }
}

template <int HS>
__device__ __forceinline__ void flash_backward_dkv(bf16* dk, bf16* dv, const float* stats, const bf16* q,
                                                   const bf16* k, const bf16* v, const unsigned char* mask,
                                                   const bf16* dout, const AttentionDims& dims) {
    constexpr int stride = HS + FLASH_PAD;
    bf16* k_tile = dynamic_shared<bf16>();
    bf16* v_tile = k_tile + FLASH_BLOCK_ROWS * stride;
    bf16* query_tiles = v_tile + FLASH_BLOCK_ROWS * stride; // two buffers of a q and a dO tile
    const int warp = threadIdx.x / WARP_SIZE;
    const int b = blockIdx.y / dims.kv_heads;
    const int kv_head = blockIdx.y - b * dims.kv_heads;
    const int group = dims.heads / dims.kv_heads;
    const i64 q_width = (i64)dims.heads * HS;
    const i64 kv_width = (i64)dims.kv_heads * HS;
    const i64 key_offset = (i64)b * dims.key_stride * kv_width + (i64)kv_head * HS;
    const unsigned char* mask_seq = mask == nullptr ? nullptr : mask + (i64)b * dims.key_stride;
    const int block_key0 = blockIdx.x * FLASH_BLOCK_ROWS;
    const int key0 = block_key0 + warp * FLASH_ROWS; // the warp's first key row
    const i64 items = (i64)dims.batch * dims.query_length * dims.heads;

    load_tile<HS>(k_tile, FLASH_BLOCK_ROWS, k + key_offset, kv_width, block_key0, dims.key_length);
    load_tile<HS>(v_tile, FLASH_BLOCK_ROWS, v + key_offset, kv_width, block_key0, dims.key_length);

    float dk_acc[HS / 8][4] = {};
    float dv_acc[HS / 8][4] = {};
    // Query i sees key j only if i >= j - QueryOffset: tiles before the block's first key are skipped. The tiles
    // run over (query head of the group, query tile), head major: t -> head t / per_head, tile t % per_head.
    const int first_query = max(0, block_key0 - dims.query_offset) / FLASH_QUERIES * FLASH_QUERIES;
    const int warp_first_query = max(0, key0 - dims.query_offset);
    const bool warp_has_keys = key0 < dims.key_length;
    const int per_head = block_key0 < dims.key_length && first_query < dims.query_length
                             ? (dims.query_length - first_query + FLASH_QUERIES - 1) / FLASH_QUERIES
                             : 0;
    const auto q_offset = [&](int t) {
        return (i64)b * dims.query_length * q_width + (i64)(kv_head * group + t / per_head) * HS;
    };
    const auto stage = [&](int t, int buffer) {
        const i64 offset = q_offset(t);
        stage_tiles_async<HS, FLASH_QUERIES>(query_tiles + buffer * 2 * FLASH_QUERIES * stride, q + offset, dout + offset,
                                             q_width, first_query + (t % per_head) * FLASH_QUERIES, dims.query_length);
    };
    for_each_tile(group * per_head, stage, [&](int t, int buffer) {
        const int h = kv_head * group + t / per_head;
        const int q0 = first_query + (t % per_head) * FLASH_QUERIES;
        if (!warp_has_keys || q0 + FLASH_QUERIES <= warp_first_query) {
            return;
        }
        const bf16* q_tile = query_tiles + buffer * 2 * FLASH_QUERIES * stride;
        const bf16* do_tile = q_tile + FLASH_QUERIES * stride;
        const float* lse_row = stats + (i64)b * dims.query_length * dims.heads + h; // + i * heads
        // s^T = k q^T and dP^T = v dO^T for the warp's 16 keys and the tile's 32 queries.
        float s[FLASH_QUERIES / 8][4] = {};
        float dp[FLASH_QUERIES / 8][4] = {};
        UNROLL
        for (int kk = 0; kk < HS / 16; kk++) {
            u32 ka[4];
            u32 va[4];
            fragment_a(ka, k_tile, stride, warp * FLASH_ROWS, kk * 16);
            fragment_a(va, v_tile, stride, warp * FLASH_ROWS, kk * 16);
            UNROLL
            for (int n = 0; n < FLASH_QUERIES / 8; n += 2) {
                u32 bq0[2];
                u32 bq1[2];
                u32 bd0[2];
                u32 bd1[2];
                fragment_b_rows(bq0, bq1, q_tile, stride, n * 8, kk * 16);
                fragment_b_rows(bd0, bd1, do_tile, stride, n * 8, kk * 16);
                mma_bf16_16x8x16(s[n], ka, bq0);
                mma_bf16_16x8x16(s[n + 1], ka, bq1);
                mma_bf16_16x8x16(dp[n], va, bd0);
                mma_bf16_16x8x16(dp[n + 1], va, bd1);
            }
        }
        // p^T and dS^T in place of s and dp.
        UNROLL
        for (int n = 0; n < FLASH_QUERIES / 8; n++) {
            UNROLL
            for (int c = 0; c < 4; c++) {
                const int j = key0 + fragment_row(c);
                const int i = q0 + n * 8 + fragment_column(c);
                float p = 0.0f;
                float ds = 0.0f;
                if (i < dims.query_length && key_visible(i, j, mask_seq, dims)) {
                    const float log_sum = lse_row[(i64)i * dims.heads];
                    if (log_sum != negative_infinity()) { // always true when j is seen; a guard, not a case
                        p = __expf(s[n][c] * dims.scale - log_sum);
                        ds = p * (dp[n][c] - lse_row[items + (i64)i * dims.heads]);
                    }
                }
                s[n][c] = p;
                dp[n][c] = ds;
            }
        }
        accumulate_products<HS, FLASH_QUERIES>(dv_acc, s, do_tile); // dv += p^T dO
        accumulate_products<HS, FLASH_QUERIES>(dk_acc, dp, q_tile); // dk += dS^T q
    });

    // Every row < KeyStride is written: unused cache slots and masked keys get the zeros they accumulated.
    UNROLL
    for (int r = 0; r < 2; r++) {
        const int j = key0 + fragment_row(2 * r);
        if (j >= dims.key_stride) {
            continue;
        }
        const i64 offset = key_offset + (i64)j * kv_width + fragment_column(0);
        UNROLL
        for (int dn = 0; dn < HS / 8; dn++) {
            *reinterpret_cast<u32*>(dk + offset + dn * 8) =
                pack_floats_bf16x2(dims.scale * dk_acc[dn][2 * r], dims.scale * dk_acc[dn][2 * r + 1]);
            *reinterpret_cast<u32*>(dv + offset + dn * 8) = pack_floats_bf16x2(dv_acc[dn][2 * r], dv_acc[dn][2 * r + 1]);
        }
    }
}

// Grid (ceil(Tq / 128), Batch * Heads) for forward and dq, (ceil(KeyStride / 128), Batch * KvHeads) for dk/dv;
// 256 threads; dynamic shared memory as the header says (FlashAttention.cs computes it).

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_forward_hs64(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                                                               const unsigned char* mask, AttentionDims dims) {
    flash_forward<64>(out, lse, q, k, v, mask, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_forward_hs128(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                                                                const unsigned char* mask, AttentionDims dims) {
    flash_forward<128>(out, lse, q, k, v, mask, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dq_hs64(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                                                   const unsigned char* mask, const bf16* dout, AttentionDims dims) {
    flash_backward_dq<64, false>(dq, stats, q, k, v, mask, dout, nullptr, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dq_hs128(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                                                    const unsigned char* mask, const bf16* dout, AttentionDims dims) {
    flash_backward_dq<128, false>(dq, stats, q, k, v, mask, dout, nullptr, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dq_saved_hs64(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                                                         const unsigned char* mask, const bf16* dout, const bf16* out, AttentionDims dims) {
    flash_backward_dq<64, true>(dq, stats, q, k, v, mask, dout, out, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dq_saved_hs128(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                                                          const unsigned char* mask, const bf16* dout, const bf16* out, AttentionDims dims) {
    flash_backward_dq<128, true>(dq, stats, q, k, v, mask, dout, out, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dkv_hs64(bf16* dk, bf16* dv, const float* stats, const bf16* q, const bf16* k,
                                                                                    const bf16* v, const unsigned char* mask, const bf16* dout, AttentionDims dims) {
    flash_backward_dkv<64>(dk, dv, stats, q, k, v, mask, dout, dims);
}

extern "C" __global__ __launch_bounds__(256, 1) void flash_attention_backward_dkv_hs128(bf16* dk, bf16* dv, const float* stats, const bf16* q, const bf16* k,
                                                                                     const bf16* v, const unsigned char* mask, const bf16* dout, AttentionDims dims) {
    flash_backward_dkv<128>(dk, dv, stats, q, k, v, mask, dout, dims);
}
