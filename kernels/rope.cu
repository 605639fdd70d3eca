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
One thread per rotary pair, grid-stride over N * heads * hs/2 pairs with 64-bit indices.
*/
#include "common.cuh"

__device__ __forceinline__ void rope_rotate(bf16* x, const float* cos_table, const float* sin_table,
                                            const int* positions, int* error, int rows, int heads, int head_size,
                                            int max_positions, float sign) {
    const int half = head_size / 2;
    const i64 pairs = (i64)rows * heads * half;
    for (i64 k = global_thread_index(); k < pairs; k += grid_stride()) {
        const i64 row = k / ((i64)heads * half);
        const int rest = (int)(k - row * heads * half);
        const int head = rest / half;
        const int i = rest - head * half;
        const int p = positions[row];
        if (p < 0 || p >= max_positions) {
            if (error != nullptr) {
                *error = 1;
            }
            continue;
        }
        const float c = cos_table[(i64)p * half + i];
        const float s = sign * sin_table[(i64)p * half + i];
        bf16* xh = x + row * heads * head_size + (i64)head * head_size;
        const float a = bf16_to_float(xh[i]);
        const float b = bf16_to_float(xh[i + half]);
        xh[i] = float_to_bf16(a * c - b * s);
        xh[i + half] = float_to_bf16(b * c + a * s);
    }
}

extern "C" __global__ void rope_forward(bf16* x, const float* cos_table, const float* sin_table,
                                        const int* positions, int* error, int rows, int heads, int head_size,
                                        int max_positions) {
    rope_rotate(x, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, 1.0f);
}

extern "C" __global__ void rope_backward(bf16* dx, const float* cos_table, const float* sin_table,
                                         const int* positions, int* error, int rows, int heads, int head_size,
                                         int max_positions) {
    rope_rotate(dx, cos_table, sin_table, positions, error, rows, heads, head_size, max_positions, -1.0f);
}
