/*
RMSNorm (LLaMA's pre-attention and pre-MLP norm), forward and backward, and the residual add fused in front of it.

  rmsnorm_forward            rstd[r] = 1 / sqrt(mean_c x[r,c]^2 + eps)
                             out[r,c] = bf16(w[c] * (x[r,c] * rstd[r]))
  rmsnorm_f32w_forward       the same with an f32 weight
  rmsnorm_residual_forward   residual[r,c] = bf16(residual[r,c] + branch[r,c])   (the residual stream, in place)
                             then out = rmsnorm(residual), as above
  rmsnorm_residual_f32w_forward  the same with an f32 weight
  rmsnorm_add_forward        sum[r,c] = bf16(a[r,c] + b[r,c]) (out of place: the tape keeps a), then out = rmsnorm(sum)
  rmsnorm_backward           dx[r,c] = rstd * w[c] * dout[r,c] - x[r,c] * rstd^3 * mean_c(x * w * dout)
                             with the rstd forward saved, or (rstd null) recomputed from x and eps;
                             accumulate != 0 adds it to dx instead (dx += ..., one bf16 rounding)
  rmsnorm_f32w_backward      the same with an f32 weight

Shapes: x, out, residual, branch, dout, dx (N, C) bf16, N = B*T rows; w (C) bf16 or f32; rstd (N) f32.

Forward saves rstd (fp32, one per row) so backward needs no second reduction over x; backward still reduces
x * w * dout once per row. A caller that kept no rstd (the engine's backend interface recomputes rather than
stores) passes null, and backward reduces x^2 in the same pass. HF computes the mean square in fp32 too (LlamaRMSNorm upcasts), then rounds
x * rstd to bf16 before multiplying by w; here w * x * rstd is rounded once, so an output may differ from HF's
by one bf16 ulp. eps comes from the config (rms_norm_eps).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. The model's weights are frozen (ReFT trains interventions
only), so there is no dw here. The norm's input is the residual stream, whose gradient already holds what the
residual add passed down: backward adds into it (accumulate), reading dx once instead of writing a fresh dx and
adding it in a second pass (3 tensor passes saved per norm). dx must not alias dout or x.

One block per row, blockDim.x a multiple of 32 (the launcher uses 256); columns are strided over the block's
threads 8 at a time (one 128-bit access) when C % 8 == 0 and the tensors are aligned, else one at a time; sums in
fp32 through block_reduce_sum. Rows are indexed with 64-bit offsets. Each thread re-reads the columns it summed
(from L1/L2) rather than holding a row in registers, so any C runs without spilling.
*/
#include "common.cuh"

// Each thread's columns of a row, P at a time: P = BF16_PACK (one 128-bit access) when row_pack below allows it,
// else 1. The P-wide and scalar paths differ only in which columns a thread sums, so in the last bits of a norm.
#define FOR_EACH_PACK(c, P, columns) for (int c = threadIdx.x * (P); c < (columns); c += blockDim.x * (P))

// The second pass of both forwards: out = w * (x * rstd) for the row x (the columns this thread summed, so no
// barrier is needed after the first pass), rstd from the row's sum of squares; rstd saved when asked.
template <int P, typename W>
__device__ __forceinline__ void normalize_row(bf16* outr, float* rstd, const bf16* xr, const W* weight, float squares,
                                              float eps, int columns) {
    const float s = rsqrtf(squares / (float)columns + eps);
    FOR_EACH_PACK(c, P, columns) {
        const Pack<bf16, P> v = load_pack<P>(xr + c);
        const Pack<W, P> w = load_pack<P>(weight + c);
        Pack<bf16, P> o;
        for (int k = 0; k < P; k++) {
            o[k] = float_to_bf16(to_float(w[k]) * (bf16_to_float(v[k]) * s));
        }
        store_pack<P>(outr + c, o);
    }
    if (threadIdx.x == 0 && rstd != nullptr) {
        rstd[blockIdx.x] = s;
    }
}

template <int P, typename W>
__device__ void rmsnorm_forward_row(bf16* out, float* rstd, const bf16* x, const W* weight, float eps, int rows,
                                    int columns) {
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const i64 offset = (i64)row * columns;
    const bf16* xr = x + offset;
    bf16* outr = out + offset;
    float sum = 0.0f;
    FOR_EACH_PACK(c, P, columns) {
        const Pack<bf16, P> v = load_pack<P>(xr + c);
        for (int k = 0; k < P; k++) {
            const float f = bf16_to_float(v[k]);
            sum += f * f;
        }
    }
    normalize_row<P>(outr, rstd, xr, weight, block_reduce_sum(sum), eps, columns);
}

// sum = a + branch (rounded to bf16, as the bf16 model stores it; sum may be a: the residual stream in place),
// then the norm of sum. Each thread re-reads only the columns it wrote itself, so no barrier is needed between
// the two passes.
template <int P, typename W>
__device__ void rmsnorm_residual_forward_row(bf16* out, float* rstd, bf16* sum, const bf16* a, const bf16* branch,
                                             const W* weight, float eps, int rows, int columns) {
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const i64 offset = (i64)row * columns;
    bf16* sr = sum + offset;
    const bf16* ar = a + offset;
    const bf16* br = branch + offset;
    bf16* outr = out + offset;
    float squares = 0.0f;
    FOR_EACH_PACK(c, P, columns) {
        const Pack<bf16, P> x = load_pack<P>(ar + c);
        const Pack<bf16, P> y = load_pack<P>(br + c);
        Pack<bf16, P> h;
        for (int k = 0; k < P; k++) {
            h[k] = float_to_bf16(bf16_to_float(x[k]) + bf16_to_float(y[k]));
            const float v = bf16_to_float(h[k]);
            squares += v * v;
        }
        store_pack<P>(sr + c, h);
    }
    normalize_row<P>(outr, rstd, sr, weight, block_reduce_sum(squares), eps, columns);
}

template <int P, typename W>
__device__ void rmsnorm_backward_row(bf16* dx, const bf16* dout, const bf16* x, const W* weight, const float* rstd,
                                     float eps, int rows, int columns, int accumulate) {
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const i64 offset = (i64)row * columns;
    const bf16* xr = x + offset;
    const bf16* dr = dout + offset;
    bf16* dxr = dx + offset;
    float dot = 0.0f;
    float squares = 0.0f;
    FOR_EACH_PACK(c, P, columns) {
        const Pack<bf16, P> v = load_pack<P>(xr + c);
        const Pack<bf16, P> d = load_pack<P>(dr + c);
        const Pack<W, P> w = load_pack<P>(weight + c);
        for (int k = 0; k < P; k++) {
            const float f = bf16_to_float(v[k]);
            dot += f * to_float(w[k]) * bf16_to_float(d[k]);
            squares += f * f;
        }
    }
    dot = block_reduce_sum(dot);
    const float s = rstd != nullptr ? rstd[row] : rsqrtf(block_reduce_sum(squares) / (float)columns + eps);
    const float coefficient = s * s * s * dot / (float)columns;
    FOR_EACH_PACK(c, P, columns) {
        const Pack<bf16, P> v = load_pack<P>(xr + c);
        const Pack<bf16, P> d = load_pack<P>(dr + c);
        const Pack<W, P> w = load_pack<P>(weight + c);
        Pack<bf16, P> g;
        if (accumulate) {
            g = load_pack<P>(dxr + c);
        }
        for (int k = 0; k < P; k++) {
            const float grad = s * to_float(w[k]) * bf16_to_float(d[k]) - coefficient * bf16_to_float(v[k]);
            g[k] = float_to_bf16(accumulate ? bf16_to_float(g[k]) + grad : grad);
        }
        store_pack<P>(dxr + c, g);
    }
}

// Whether a row kernel can take its columns 8 at a time: whole packs per row, every tensor aligned to its pack
// (16 bytes for bf16 rows and weights, 32 for an f32 weight).
template <typename W, typename... P>
__device__ __forceinline__ bool row_pack(int columns, const W* weight, const P*... rows) {
    return columns % BF16_PACK == 0 && aligned16(rows...) && ((u64)weight % alignof(Pack<W, BF16_PACK>)) == 0;
}

extern "C" __global__ void rmsnorm_forward(bf16* out, float* rstd, const bf16* x, const bf16* weight, float eps,
                                           int rows, int columns) {
    if (row_pack(columns, weight, out, x)) {
        rmsnorm_forward_row<BF16_PACK>(out, rstd, x, weight, eps, rows, columns);
    } else {
        rmsnorm_forward_row<1>(out, rstd, x, weight, eps, rows, columns);
    }
}

extern "C" __global__ void rmsnorm_f32w_forward(bf16* out, float* rstd, const bf16* x, const float* weight,
                                                float eps, int rows, int columns) {
    if (row_pack(columns, weight, out, x)) {
        rmsnorm_forward_row<BF16_PACK>(out, rstd, x, weight, eps, rows, columns);
    } else {
        rmsnorm_forward_row<1>(out, rstd, x, weight, eps, rows, columns);
    }
}

extern "C" __global__ void rmsnorm_residual_forward(bf16* out, float* rstd, bf16* residual, const bf16* branch,
                                                    const bf16* weight, float eps, int rows, int columns) {
    if (row_pack(columns, weight, out, residual, branch)) {
        rmsnorm_residual_forward_row<BF16_PACK>(out, rstd, residual, residual, branch, weight, eps, rows, columns);
    } else {
        rmsnorm_residual_forward_row<1>(out, rstd, residual, residual, branch, weight, eps, rows, columns);
    }
}

extern "C" __global__ void rmsnorm_residual_f32w_forward(bf16* out, float* rstd, bf16* residual,
                                                         const bf16* branch, const float* weight, float eps,
                                                         int rows, int columns) {
    if (row_pack(columns, weight, out, residual, branch)) {
        rmsnorm_residual_forward_row<BF16_PACK>(out, rstd, residual, residual, branch, weight, eps, rows, columns);
    } else {
        rmsnorm_residual_forward_row<1>(out, rstd, residual, residual, branch, weight, eps, rows, columns);
    }
}

extern "C" __global__ void rmsnorm_add_forward(bf16* out, float* rstd, bf16* sum, const bf16* a, const bf16* b,
                                               const bf16* weight, float eps, int rows, int columns) {
    if (row_pack(columns, weight, out, sum, a, b)) {
        rmsnorm_residual_forward_row<BF16_PACK>(out, rstd, sum, a, b, weight, eps, rows, columns);
    } else {
        rmsnorm_residual_forward_row<1>(out, rstd, sum, a, b, weight, eps, rows, columns);
    }
}

extern "C" __global__ void rmsnorm_backward(bf16* dx, const bf16* dout, const bf16* x, const bf16* weight,
                                            const float* rstd, float eps, int rows, int columns, int accumulate) {
    if (row_pack(columns, weight, dx, dout, x)) {
        rmsnorm_backward_row<BF16_PACK>(dx, dout, x, weight, rstd, eps, rows, columns, accumulate);
    } else {
        rmsnorm_backward_row<1>(dx, dout, x, weight, rstd, eps, rows, columns, accumulate);
    }
}

extern "C" __global__ void rmsnorm_f32w_backward(bf16* dx, const bf16* dout, const bf16* x, const float* weight,
                                                 const float* rstd, float eps, int rows, int columns, int accumulate) {
    if (row_pack(columns, weight, dx, dout, x)) {
        rmsnorm_backward_row<BF16_PACK>(dx, dout, x, weight, rstd, eps, rows, columns, accumulate);
    } else {
        rmsnorm_backward_row<1>(dx, dout, x, weight, rstd, eps, rows, columns, accumulate);
    }
}
