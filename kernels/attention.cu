/*
Causal grouped-query attention (GQA), forward and backward: direct kernels, one warp per output row. The
flash-style tensor-core kernel comes later; this file is the simple, portable version (it runs on the emulator)
and the one the faster kernel is checked against.

  attention_forward        s_ij = scale * q_i . k_j          for the keys j query i sees (below), scale = 1/sqrt(hs)
                           p_ij = exp(s_ij - m_i) / l_i      m_i = max_j s_ij, l_i = sum_j exp(s_ij - m_i)
                           out_i = sum_j p_ij v_j            lse_i = m_i + log(l_i) (optional)
  attention_backward_dq    dP_ij = dO_i . v_j,  D_i = sum_j p_ij dP_ij,  dS_ij = p_ij (dP_ij - D_i)
                           dq_i = scale * sum_j dS_ij k_j    and saves lse_i, D_i for the next kernel
  attention_backward_dkv   dk_j = scale * sum_(h in group, i) dS_ij q_i,  dv_j = sum_(h in group, i) p_ij dO_i
                           (p and dS recomputed from q, k, v, dO and the saved lse, D)

Which keys a query sees: query i of a sequence sits at absolute position QueryOffset + i and sees key rows
j <= QueryOffset + i whose mask byte is nonzero (no mask: all of them). QueryOffset + QueryLength <= KeyLength,
so rows j >= KeyLength (the unused tail of a KV cache) are never read. A query that sees no key (a padding row
whose keys are all masked) outputs zeros, gets a zero dq and adds nothing to any dk, dv. Query head h reads
KV head h / (Heads / KvHeads). Exactly CpuBackend<T>.Attention and AttentionBackward.

Shapes: q, out, dO, dq (B*Tq, H*hs) bf16; k, v, dk, dv (B*S, KvH*hs) bf16, S = KeyStride (the cache's capacity)
of which the first Tk = KeyLength rows per sequence are keys; mask (B*S) bytes or null; lse, D (B*Tq, H) f32,
in one scratch buffer: stats[0 .. B*Tq*H) = lse, stats[B*Tq*H .. 2*B*Tq*H) = D.

Forward saves nothing that backward needs: the engine's interface does not keep the forward's output or
softmax statistics, so backward recomputes the softmax from q and k (one more pass over the keys). Forward can
still write lse when asked (a later kernel may use it).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. dq, dk, dv are activation gradients: every element is written,
the rows of unused cache slots (j >= KeyLength) and of masked keys with zeros. dk and dv sum over the query heads
of a group and the queries that see the key in one warp, in a fixed order: no atomics, so two runs give the same
bits.

Layout of the work: each warp owns one row (a query row and head for forward and dq, a key row and KV head for
dk/dv) and walks the other side in chunks of 32, one element per lane (each lane computes a whole dot product of
hs, reading its row from global memory, and the fp32 operand of the warp's own row from shared memory). Forward
and dq use the online softmax (a running max and sum, rescaled per chunk), so no buffer grows with the sequence:
shared memory per warp is a few rows of hs floats, and any KeyLength runs. Output dims are strided over the
lanes, each lane keeping its dims' fp32 accumulators in its warp's shared slice. blockDim.x = 32 * warps; the
warps of a block are independent (no __syncthreads), and a warp-stride loop covers any number of rows.
*/
#include "common.cuh"
#include "attention.cuh"

#define ATTENTION_CHUNK WARP_SIZE

// a (fp32, shared) . b (bf16, global), in order d = 0, 1, ...
__device__ __forceinline__ float dot_row(const float* a, const bf16* b, int n) {
    float s = 0.0f;
    for (int d = 0; d < n; d++) {
        s += a[d] * bf16_to_float(b[d]);
    }
    return s;
}

// Loads a bf16 row into the warp's shared slice as fp32 (each lane its dims).
__device__ __forceinline__ void load_row(float* destination, const bf16* source, int n, int lane) {
    for (int d = lane; d < n; d += WARP_SIZE) {
        destination[d] = bf16_to_float(source[d]);
    }
}

// Shared floats per warp: forward q, acc (hs each) and the chunk's p; dq: q, dO, acc and dS; dk/dv: k, v, dk, dv,
// and the chunk's p, dS and query-row offsets (i64, two floats each; the slices stay 8-byte aligned). The launcher
// sizes the dynamic shared memory the same way.
__device__ __forceinline__ int forward_floats_per_warp(int hs) { return 2 * hs + ATTENTION_CHUNK; }
__device__ __forceinline__ int dq_floats_per_warp(int hs) { return 3 * hs + ATTENTION_CHUNK; }
__device__ __forceinline__ int dkv_floats_per_warp(int hs) { return 4 * hs + 4 * ATTENTION_CHUNK; }

// One (query row, head) work item of the forward and dQ kernels: item = (b * Tq + i) * H + h, the row of lse and
// of out's (B*Tq*H, hs) view. Its keys and values are its sequence's rows at its KV head; it sees keys
// 0 .. QueryOffset + i whose mask byte (if any) is nonzero.
struct QueryItem {
    int head;
    i64 query_row; // b * Tq + i
    int visible;
    const bf16* keys;
    const bf16* values;
    const unsigned char* mask; // null: every key
};

__device__ __forceinline__ QueryItem query_item(i64 item, const bf16* k, const bf16* v, const unsigned char* mask,
                                                const AttentionDims& dims) {
    QueryItem qi;
    qi.head = (int)(item % dims.heads);
    qi.query_row = item / dims.heads;
    const int b = (int)(qi.query_row / dims.query_length);
    const int i = (int)(qi.query_row - (i64)b * dims.query_length);
    const i64 kv_width = (i64)dims.kv_heads * dims.head_size;
    const i64 key_row0 = (i64)b * dims.key_stride;
    const i64 column = (i64)(qi.head / (dims.heads / dims.kv_heads)) * dims.head_size;
    qi.keys = k + key_row0 * kv_width + column;
    qi.values = v + key_row0 * kv_width + column;
    qi.mask = mask == nullptr ? nullptr : mask + key_row0;
    qi.visible = dims.query_offset + i + 1;
    return qi;
}

extern "C" __global__ void attention_forward(bf16* out, float* lse, const bf16* q, const bf16* k, const bf16* v,
                                             const unsigned char* mask, AttentionDims dims) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    const int hs = dims.head_size;
    const i64 q_width = (i64)dims.heads * hs;
    const i64 kv_width = (i64)dims.kv_heads * hs;
    float* qs = dynamic_shared<float>() + (i64)warp * forward_floats_per_warp(hs);
    float* acc = qs + hs;
    float* p_chunk = acc + hs;
    const i64 rows = (i64)dims.batch * dims.query_length * dims.heads;
    for (i64 item = (i64)blockIdx.x * warps + warp; item < rows; item += (i64)gridDim.x * warps) {
        const QueryItem qi = query_item(item, k, v, mask, dims);
        const int h = qi.head;
        const i64 query_row = qi.query_row;
        const bf16* kb = qi.keys;
        const bf16* vb = qi.values;
        const unsigned char* mb = qi.mask;
        const int visible = qi.visible;

        load_row(qs, q + query_row * q_width + (i64)h * hs, hs, lane);
        for (int d = lane; d < hs; d += WARP_SIZE) {
            acc[d] = 0.0f;
        }
        __syncwarp();

        float m = negative_infinity(); // running max
        float l = 0.0f;                // running sum of exp(s - m)
        for (int j0 = 0; j0 < visible; j0 += ATTENTION_CHUNK) {
            const int j = j0 + lane;
            float s = negative_infinity();
            if (j < visible && (mb == nullptr || mb[j] != 0)) {
                s = dot_row(qs, kb + (i64)j * kv_width, hs) * dims.scale;
            }
            const float chunk_max = warp_reduce_max(s);
            if (chunk_max == negative_infinity()) {
                continue; // the whole chunk is masked (warp-uniform)
            }
            const float new_max = fmaxf(m, chunk_max);
            const float alpha = expf(m - new_max); // 0 on the first visible chunk (m = -inf)
            const float p = s == negative_infinity() ? 0.0f : expf(s - new_max);
            l = l * alpha + warp_reduce_sum(p);
            m = new_max;
            p_chunk[lane] = p;
            __syncwarp();
            const int count = min(ATTENTION_CHUNK, visible - j0);
            for (int d = lane; d < hs; d += WARP_SIZE) {
                float a = acc[d] * alpha;
                for (int c = 0; c < count; c++) {
                    const float pc = p_chunk[c];
                    if (pc != 0.0f) { // masked keys (and underflows) read no v, as the CPU backend
                        a += pc * bf16_to_float(vb[(i64)(j0 + c) * kv_width + d]);
                    }
                }
                acc[d] = a;
            }
            __syncwarp();
        }

        bf16* outr = out + query_row * q_width + (i64)h * hs;
        const float inverse = l > 0.0f ? 1.0f / l : 0.0f; // no visible key: zeros
        for (int d = lane; d < hs; d += WARP_SIZE) {
            outr[d] = float_to_bf16(acc[d] * inverse);
        }
        if (lse != nullptr && lane == 0) {
            lse[item] = l > 0.0f ? m + logf(l) : negative_infinity();
        }
        __syncwarp(); // the next row overwrites qs, acc, which other lanes may still read
    }
}

extern "C" __global__ void attention_backward_dq(bf16* dq, float* stats, const bf16* q, const bf16* k, const bf16* v,
                                                 const unsigned char* mask, const bf16* dout, AttentionDims dims) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    const int hs = dims.head_size;
    const i64 q_width = (i64)dims.heads * hs;
    const i64 kv_width = (i64)dims.kv_heads * hs;
    float* qs = dynamic_shared<float>() + (i64)warp * dq_floats_per_warp(hs);
    float* dos = qs + hs;
    float* acc = dos + hs;
    float* ds_chunk = acc + hs;
    const i64 rows = (i64)dims.batch * dims.query_length * dims.heads;
    for (i64 item = (i64)blockIdx.x * warps + warp; item < rows; item += (i64)gridDim.x * warps) {
        const QueryItem qi = query_item(item, k, v, mask, dims);
        const int h = qi.head;
        const i64 query_row = qi.query_row;
        const bf16* kb = qi.keys;
        const bf16* vb = qi.values;
        const unsigned char* mb = qi.mask;
        const int visible = qi.visible;
        const i64 offset = query_row * q_width + (i64)h * hs;

        load_row(qs, q + offset, hs, lane);
        load_row(dos, dout + offset, hs, lane);
        for (int d = lane; d < hs; d += WARP_SIZE) {
            acc[d] = 0.0f;
        }
        __syncwarp();

        // Pass 1: the softmax statistics, online: m, l as in forward, and n = sum_j exp(s_j - m) dP_j, so that
        // D = sum_j p_j dP_j = n / l.
        float m = negative_infinity();
        float l = 0.0f;
        float n = 0.0f;
        for (int j0 = 0; j0 < visible; j0 += ATTENTION_CHUNK) {
            const int j = j0 + lane;
            float s = negative_infinity();
            float dp = 0.0f;
            if (j < visible && (mb == nullptr || mb[j] != 0)) {
                s = dot_row(qs, kb + (i64)j * kv_width, hs) * dims.scale;
                dp = dot_row(dos, vb + (i64)j * kv_width, hs);
            }
            const float chunk_max = warp_reduce_max(s);
            if (chunk_max == negative_infinity()) {
                continue;
            }
            const float new_max = fmaxf(m, chunk_max);
            const float alpha = expf(m - new_max);
            const float e = s == negative_infinity() ? 0.0f : expf(s - new_max);
            l = l * alpha + warp_reduce_sum(e);
            n = n * alpha + warp_reduce_sum(e * dp);
            m = new_max;
        }

        const i64 delta_base = rows; // D follows lse in stats
        if (l == 0.0f) {
            // No visible key: the output was zero whatever q, k, v were; zero gradient, and a row the dk/dv
            // kernel skips (lse = -inf).
            for (int d = lane; d < hs; d += WARP_SIZE) {
                dq[offset + d] = float_to_bf16(0.0f);
            }
            if (lane == 0) {
                stats[item] = negative_infinity();
                stats[delta_base + item] = 0.0f;
            }
            __syncwarp();
            continue;
        }
        const float log_sum = m + logf(l);
        const float delta = n / l;

        // Pass 2: dS_j = p_j (dP_j - D) per lane, then dq += sum_j dS_j k_j over the chunk (dims over lanes).
        for (int j0 = 0; j0 < visible; j0 += ATTENTION_CHUNK) {
            const int j = j0 + lane;
            float ds = 0.0f;
            if (j < visible && (mb == nullptr || mb[j] != 0)) {
                const float s = dot_row(qs, kb + (i64)j * kv_width, hs) * dims.scale;
                const float p = expf(s - log_sum);
                ds = p * (dot_row(dos, vb + (i64)j * kv_width, hs) - delta);
            }
            ds_chunk[lane] = ds;
            __syncwarp();
            const int chunk = min(ATTENTION_CHUNK, visible - j0);
            for (int d = lane; d < hs; d += WARP_SIZE) {
                float a = acc[d];
                for (int c = 0; c < chunk; c++) {
                    const float dsc = ds_chunk[c];
                    if (dsc != 0.0f) { // masked keys read no k
                        a += dsc * bf16_to_float(kb[(i64)(j0 + c) * kv_width + d]);
                    }
                }
                acc[d] = a;
            }
            __syncwarp();
        }

        for (int d = lane; d < hs; d += WARP_SIZE) {
            dq[offset + d] = float_to_bf16(dims.scale * acc[d]);
        }
        if (lane == 0) {
            stats[item] = log_sum;
            stats[delta_base + item] = delta;
        }
        __syncwarp();
    }
}

extern "C" __global__ void attention_backward_dkv(bf16* dk, bf16* dv, const float* stats, const bf16* q,
                                                  const bf16* k, const bf16* v, const unsigned char* mask,
                                                  const bf16* dout, AttentionDims dims) {
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    const int hs = dims.head_size;
    const int group = dims.heads / dims.kv_heads;
    const i64 q_width = (i64)dims.heads * hs;
    const i64 kv_width = (i64)dims.kv_heads * hs;
    float* ks = dynamic_shared<float>() + (i64)warp * dkv_floats_per_warp(hs);
    float* vs = ks + hs;
    float* dk_acc = vs + hs;
    float* dv_acc = dk_acc + hs;
    float* p_chunk = dv_acc + hs;
    float* ds_chunk = p_chunk + ATTENTION_CHUNK;
    i64* offset_chunk = reinterpret_cast<i64*>(ds_chunk + ATTENTION_CHUNK); // each pair's q/dO row and head
    const i64 query_items = (i64)dims.batch * dims.query_length * dims.heads;
    const i64 rows = (i64)dims.batch * dims.key_stride * dims.kv_heads;
    for (i64 item = (i64)blockIdx.x * warps + warp; item < rows; item += (i64)gridDim.x * warps) {
        // item = (b * S + j) * KvH + kvh: the row of dk's (B*S*KvH, hs) view
        const int kvh = (int)(item % dims.kv_heads);
        const i64 key_row = item / dims.kv_heads;
        const int b = (int)(key_row / dims.key_stride);
        const int j = (int)(key_row - (i64)b * dims.key_stride);
        const i64 offset = key_row * kv_width + (i64)kvh * hs;
        // Queries i that see key j: QueryOffset + i >= j, i < Tq. None for an unused cache row or a masked key.
        const int first = max(0, j - dims.query_offset);
        const bool seen = j < dims.key_length && first < dims.query_length && (mask == nullptr || mask[key_row] != 0);
        if (!seen) {
            for (int d = lane; d < hs; d += WARP_SIZE) {
                dk[offset + d] = float_to_bf16(0.0f);
                dv[offset + d] = float_to_bf16(0.0f);
            }
            continue; // nothing in shared memory was touched
        }
        const int queries = dims.query_length - first;
        const int pairs = group * queries; // (query head g of the group, query first + t), g major: the CPU's order

        load_row(ks, k + offset, hs, lane);
        load_row(vs, v + offset, hs, lane);
        for (int d = lane; d < hs; d += WARP_SIZE) {
            dk_acc[d] = 0.0f;
            dv_acc[d] = 0.0f;
        }
        __syncwarp();

        for (int n0 = 0; n0 < pairs; n0 += ATTENTION_CHUNK) {
            const int n = n0 + lane;
            float p = 0.0f;
            float ds = 0.0f;
            i64 q_offset = 0;
            if (n < pairs) {
                const int g = n / queries;
                const int i = first + (n - g * queries);
                const int h = kvh * group + g;
                const i64 query_row = (i64)b * dims.query_length + i;
                const i64 query_item = query_row * dims.heads + h;
                q_offset = query_row * q_width + (i64)h * hs;
                const float log_sum = stats[query_item];
                if (log_sum != negative_infinity()) { // always true when j is seen; a guard, not a case
                    const float s = dot_row(ks, q + q_offset, hs) * dims.scale;
                    p = expf(s - log_sum);
                    ds = p * (dot_row(vs, dout + q_offset, hs) - stats[query_items + query_item]);
                }
            }
            p_chunk[lane] = p;
            ds_chunk[lane] = ds;
            offset_chunk[lane] = q_offset;
            __syncwarp();
            const int chunk = min(ATTENTION_CHUNK, pairs - n0);
            for (int d = lane; d < hs; d += WARP_SIZE) {
                float dk_d = dk_acc[d];
                float dv_d = dv_acc[d];
                for (int c = 0; c < chunk; c++) {
                    const float pc = p_chunk[c];
                    if (pc != 0.0f) { // as the CPU backend: a zero p (an underflow) adds nothing
                        const i64 element = offset_chunk[c] + d;
                        dk_d += ds_chunk[c] * bf16_to_float(q[element]);
                        dv_d += pc * bf16_to_float(dout[element]);
                    }
                }
                dk_acc[d] = dk_d;
                dv_acc[d] = dv_d;
            }
            __syncwarp();
        }

        for (int d = lane; d < hs; d += WARP_SIZE) {
            dk[offset + d] = float_to_bf16(dims.scale * dk_acc[d]);
            dv[offset + d] = float_to_bf16(dv_acc[d]);
        }
        __syncwarp();
    }
}
