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
                             with the rstd forward saved, or (rstd null) recomputed from x and eps
  rmsnorm_f32w_backward      the same with an f32 weight

Shapes: x, out, residual, branch, dout, dx (N, C) bf16, N = B*T rows; w (C) bf16 or f32; rstd (N) f32.

Forward saves rstd (fp32, one per row) so backward needs no second reduction over x; backward still reduces
x * w * dout once per row. A caller that kept no rstd (the engine's backend interface recomputes rather than
stores) passes null, and backward reduces x^2 in the same pass. HF computes the mean square in fp32 too (LlamaRMSNorm upcasts), then rounds
x * rstd to bf16 before multiplying by w; here w * x * rstd is rounded once, so an output may differ from HF's
by one bf16 ulp. eps comes from the config (rms_norm_eps).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. The model's weights are frozen (ReFT trains interventions
only), so there is no dw here; dx is an activation gradient and is written. The caller adds it into the
residual stream's gradient (elementwise.cu's accumulate).

One block per row, blockDim.x a multiple of 32 (the launcher uses 256); columns are strided over the block's
threads, sums in fp32 through block_reduce_sum. Rows are indexed with 64-bit offsets. Each thread re-reads the
columns it summed (from L1/L2) rather than holding a row in registers, so any C runs without spilling.
*/
#include "common.cuh"

template <typename W>
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
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        float v = bf16_to_float(xr[c]);
        sum += v * v;
    }
    sum = block_reduce_sum(sum);
    const float s = rsqrtf(sum / (float)columns + eps);
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        outr[c] = float_to_bf16(to_float(weight[c]) * (bf16_to_float(xr[c]) * s));
    }
    if (threadIdx.x == 0 && rstd != nullptr) {
        rstd[row] = s;
    }
}

// sum = a + branch (rounded to bf16, as the bf16 model stores it; sum may be a: the residual stream in place),
// then the norm of sum. Each thread re-reads only the columns it wrote itself, so no barrier is needed between
// the two passes.
template <typename W>
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
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        bf16 h = float_to_bf16(bf16_to_float(ar[c]) + bf16_to_float(br[c]));
        sr[c] = h;
        float v = bf16_to_float(h);
        squares += v * v;
    }
    squares = block_reduce_sum(squares);
    const float s = rsqrtf(squares / (float)columns + eps);
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        outr[c] = float_to_bf16(to_float(weight[c]) * (bf16_to_float(sr[c]) * s));
    }
    if (threadIdx.x == 0 && rstd != nullptr) {
        rstd[row] = s;
    }
}

template <typename W>
__device__ void rmsnorm_backward_row(bf16* dx, const bf16* dout, const bf16* x, const W* weight, const float* rstd,
                                     float eps, int rows, int columns) {
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
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        const float v = bf16_to_float(xr[c]);
        dot += v * to_float(weight[c]) * bf16_to_float(dr[c]);
        squares += v * v;
    }
    dot = block_reduce_sum(dot);
    const float s = rstd != nullptr ? rstd[row] : rsqrtf(block_reduce_sum(squares) / (float)columns + eps);
    const float coefficient = s * s * s * dot / (float)columns;
    for (int c = threadIdx.x; c < columns; c += blockDim.x) {
        float g = s * to_float(weight[c]) * bf16_to_float(dr[c]) - coefficient * bf16_to_float(xr[c]);
        dxr[c] = float_to_bf16(g);
    }
}

extern "C" __global__ void rmsnorm_forward(bf16* out, float* rstd, const bf16* x, const bf16* weight, float eps,
                                           int rows, int columns) {
    rmsnorm_forward_row(out, rstd, x, weight, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_f32w_forward(bf16* out, float* rstd, const bf16* x, const float* weight,
                                                float eps, int rows, int columns) {
    rmsnorm_forward_row(out, rstd, x, weight, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_residual_forward(bf16* out, float* rstd, bf16* residual, const bf16* branch,
                                                    const bf16* weight, float eps, int rows, int columns) {
    rmsnorm_residual_forward_row(out, rstd, residual, residual, branch, weight, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_residual_f32w_forward(bf16* out, float* rstd, bf16* residual,
                                                         const bf16* branch, const float* weight, float eps,
                                                         int rows, int columns) {
    rmsnorm_residual_forward_row(out, rstd, residual, residual, branch, weight, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_add_forward(bf16* out, float* rstd, bf16* sum, const bf16* a, const bf16* b,
                                               const bf16* weight, float eps, int rows, int columns) {
    rmsnorm_residual_forward_row(out, rstd, sum, a, b, weight, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_backward(bf16* dx, const bf16* dout, const bf16* x, const bf16* weight,
                                            const float* rstd, float eps, int rows, int columns) {
    rmsnorm_backward_row(dx, dout, x, weight, rstd, eps, rows, columns);
}

extern "C" __global__ void rmsnorm_f32w_backward(bf16* dx, const bf16* dout, const bf16* x, const float* weight,
                                                 const float* rstd, float eps, int rows, int columns) {
    rmsnorm_backward_row(dx, dout, x, weight, rstd, eps, rows, columns);
}
