/*
Rotary position embedding (RoPE) on Q or K, in place, in HF's rotate_half layout: each head of size hs is two
halves, and pair i is (x[i], x[i + hs/2]), rotated by the angle pos * inv_freq[i].

  rope_forward    x[i]        = bf16(x[i] * cos[p,i] - x[i+h] * sin[p,i])
                  x[i+h]      = bf16(x[i+h] * cos[p,i] + x[i] * sin[p,i])        h = hs/2, p = positions[row]
  rope_backward   the same with -sin: the rotation's transpose, which is its inverse. Backward of forward maps
                  dout to dx in place; it also undoes a forward (up to bf16 rounding).

Shapes: x (N, heads * hs) bf16, N = B*T rows (Q with n_heads, K with n_kv_heads); cos, sin (maxPositions, hs/2)
f32, built on the host from rope_theta (and Llama-3 rope_scaling) as HF does; positions (N) int32.

Forward saves nothing: backward needs only the tables and positions. HF rounds cos and sin to bf16 and computes
q*cos + rotate_half(q)*sin in bf16 (a rounding per op); here the tables stay fp32 and each output is rounded
once, within one bf16 ulp of HF.

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. RoPE has no parameters; dx overwrites dout in place.

Bounds: a position outside [0, maxPositions) leaves that row's pairs unchanged and sets *error = 1 (when error
is not null); the launcher's caller checks the flag (positions usually come from the host, which checks them).
One thread per 8 rotary pairs (128-bit accesses; one pair when hs/2 is not a multiple of 8 or a tensor is not
aligned), grid-stride over them with 64-bit indices; the launcher sizes the grid for N * heads * hs/16 threads.
*/
#include "common.cuh"

// Pairs i .. i+W-1 of a head at a time (W consecutive elements of each half: one 128-bit access per half for W = 8).
template <int W>
__device__ __forceinline__ void rope_rotate(bf16* x, const float* cos_table, const float* sin_table,
                                            const int* positions, int* error, int rows, int heads, int head_size,
                                            int max_positions, float sign) {
    const int half = head_size / 2;
    const int groups_per_head = half / W;
    const i64 groups = (i64)rows * heads * groups_per_head;
    for (i64 k = global_thread_index(); k < groups; k += grid_stride()) {
        const i64 row = k / ((i64)heads * groups_per_head);
        const int rest = (int)(k - row * heads * groups_per_head);
        const int head = rest / groups_per_head;
        const int i = (rest - head * groups_per_head) * W;
        const int p = positions[row];
        if (p < 0 || p >= max_positions) {
            if (error != nullptr) {
                *error = 1;
            }
            continue;
        }
        const Pack<float, W> c = load_pack<W>(cos_table + (i64)p * half + i);
        const Pack<float, W> s = load_pack<W>(sin_table + (i64)p * half + i);
        bf16* xh = x + row * heads * head_size + (i64)head * head_size;
        const Pack<bf16, W> a = load_pack<W>(xh + i);
        const Pack<bf16, W> b = load_pack<W>(xh + i + half);
        Pack<bf16, W> ra;
        Pack<bf16, W> rb;
        for (int e = 0; e < W; e++) {
            const float ae = bf16_to_float(a[e]);
            const float be = bf16_to_float(b[e]);
            const float se = sign * s[e];
            ra[e] = float_to_bf16(ae * c[e] - be * se);
            rb[e] = float_to_bf16(be * c[e] + ae * se);
        }
        store_pack<W>(xh + i, ra);
        store_pack<W>(xh + i + half, rb);
    }
}

// 8 pairs per thread when each half of a head is whole packs and the tensors are aligned (x to 16 bytes, the
// fp32 tables to 32), else one pair per thread.
__device__ __forceinline__ void rope(bf16* x, const float* cos_table, const float* sin_table, const int* positions,
                                     int* error, int rows, int heads, int head_size, int max_positions, float sign) {
    const bool packed = (head_size / 2) % BF16_PACK == 0 && aligned16(x) &&
                        (((u64)cos_table | (u64)sin_table) % alignof(Pack<float, BF16_PACK>)) == 0;
    if (packed) {
        rope_rotate<BF16_PACK>(x, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, sign);
    } else {
        rope_rotate<1>(x, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, sign);
    }
}

extern "C" __global__ void rope_forward(bf16* x, const float* cos_table, const float* sin_table,
                                        const int* positions, int* error, int rows, int heads, int head_size,
                                        int max_positions) {
    rope(x, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, 1.0f);
}

extern "C" __global__ void rope_backward(bf16* dx, const float* cos_table, const float* sin_table,
                                         const int* positions, int* error, int rows, int heads, int head_size,
                                         int max_positions) {
    rope(dx, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, -1.0f);
}
