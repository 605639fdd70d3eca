/*
The training step's parameter-side kernels, over f32 tensors: AdamW, the global gradient norm, gradient clipping
and the retraction that keeps a LoReFT projection R orthonormal. An intervention set has tens to hundreds of
small tensors (R, W, b per intervention and layer); one launch per tensor would be launch-bound, so each kernel
is ONE launch over MANY tensors, described by a device-resident table of segments (built once by the host).

  adamw_step            for each segment (p, g, m, v, length, wd), for each element, in this order (torch's):
                          m = b1 * m + (1 - b1) * g
                          v = b2 * v + (1 - b2) * g * g
                          p = p * (1 - lr * wd) - lr * (m * inv_c1) / (sqrt(v) * inv_sqrt_c2 + eps)
                        inv_c1 = 1 / (1 - b1^t), inv_sqrt_c2 = 1 / sqrt(1 - b2^t), for the 1-based step t,
                        computed by the host in double (as CpuBackend does). Decoupled weight decay, per segment.
  sumsq_partials        partials[s * gridDim.x + b] = sum of x^2 over block b's share of segment s (fp32)
  sumsq_finish          *result = sum of the partials in a fixed order, in double: the global squared gradient
                        norm. No atomics: the same inputs give the same bits, run after run.
  scale_segments        x *= factor over every segment (clipping: factor = maxNorm / (norm + 1e-6))
  orthonormalize_rows   for each matrix R (r, d), r <= d, in place: modified Gram-Schmidt of the rows, twice
                        ("twice is enough": R R^T = I to fp32 rounding after the second pass):
                          for i: for j < i: row_i -= (row_i . row_j) row_j;  row_i /= |row_i|
  optimizer_layout      writes the size and field offsets of the three segment structs, for the test that the
                        C# mirrors (NativeReft.Cuda.AdamWSegment, TensorSegment, MatrixSegment) agree

These are not <op>_forward / <op>_backward: they update parameters after the backward pass, named by what they do.

Shapes: every tensor f32, contiguous; a segment's length is its element count (i64). Tables: AdamWSegment,
TensorSegment, MatrixSegment below, arrays in device memory; `count` segments are used.

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. Here the gradients are read (AdamW, the norm) or scaled in place
(clipping); parameters and the moments m, v are updated in place. Nothing is saved.

Numerics: fp32 throughout, as CpuBackend<float>. adamw_step writes every operation with the round-to-nearest
intrinsics (__fmul_rn, __fadd_rn...), which the compiler may not contract into FMAs, in CpuBackend's order and
association, with the host's double-computed factors: the result equals CpuBackend<float>.AdamW bit for bit. The
norm's partials are fp32 (per thread, then a block tree), the final sum double. orthonormalize_rows follows
CpuBackend's algorithm step for step; its dot products sum in another order (per thread, then a tree), so it
agrees to fp32 rounding, not bits. A degenerate row (norm 0 or not finite) or a matrix with rows > columns
sets *error = 1 (when error is not null) and is left as it is; CpuBackend throws there.

Launches: adamw_step, sumsq_partials and scale_segments run a grid (blocks per segment, segments): block
(b, s) grid-strides over segment s with 64-bit indices, so any length runs with any grid. sumsq_finish is one
block. orthonormalize_rows is one block per matrix (grid.x = matrices): every thread owns the columns
c = threadIdx.x (mod blockDim.x) of every row, so the only communication is the block reductions of the dot
products and norms (2 * (r(r-1)/2 + r) of them per matrix). blockDim.x a multiple of 32 everywhere.
*/
#include "common.cuh"

// One row of the AdamW table. Mirrored by NativeReft.Cuda.AdamWSegment (pointers as 8-byte DevicePointers).
struct AdamWSegment {
    float* param;         //  0
    const float* grad;    //  8
    float* m;             // 16: first moment
    float* v;             // 24: second moment
    i64 length;           // 32: elements of each of the four tensors
    double weight_decay;  // 40: decoupled decay (0: none)
};                        // 48 bytes
static_assert(sizeof(AdamWSegment) == 48, "AdamWSegment is mirrored in C#: 48 bytes");

// One tensor of the norm and clipping tables. Mirrored by NativeReft.Cuda.TensorSegment.
struct TensorSegment {
    float* data;  // 0
    i64 length;   // 8
};                // 16 bytes
static_assert(sizeof(TensorSegment) == 16, "TensorSegment is mirrored in C#: 16 bytes");

// One row-major matrix (rows, columns) of the retraction table. Mirrored by NativeReft.Cuda.MatrixSegment.
struct MatrixSegment {
    float* data;  // 0
    int rows;     // 8
    int columns;  // 12
};                // 16 bytes
static_assert(sizeof(MatrixSegment) == 16, "MatrixSegment is mirrored in C#: 16 bytes");

// The block's grid-stride share of a segment: block blockIdx.x of gridDim.x.
__device__ __forceinline__ i64 segment_start() {
    return (i64)blockIdx.x * blockDim.x + threadIdx.x;
}

__device__ __forceinline__ i64 segment_stride() {
    return (i64)gridDim.x * blockDim.x;
}

__device__ __forceinline__ double warp_reduce_sum_double(double v) {
    for (int offset = WARP_SIZE / 2; offset > 0; offset >>= 1) {
        v += __shfl_xor_sync(FULL_MASK, v, offset);
    }
    return v;
}

// block_reduce_sum (common.cuh) in double: a fixed tree, the block's sum in every thread.
__device__ __forceinline__ double block_reduce_sum_double(double v) {
    __shared__ double partial_double[WARP_SIZE];
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    v = warp_reduce_sum_double(v);
    __syncthreads();
    if (lane == 0) {
        partial_double[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? partial_double[lane] : 0.0;
    return warp_reduce_sum_double(v);
}

extern "C" __global__ void adamw_step(const AdamWSegment* segments, int count, double learning_rate, float beta1,
                                      float beta2, float epsilon, float inv_c1, float inv_sqrt_c2) {
    const int s = blockIdx.y;
    if (s >= count) {
        return;
    }
    const AdamWSegment seg = segments[s];
    // CpuBackend: lr = (float)lr; decay = 1 - (float)(lr * wd), the product in double.
    const float lr = (float)learning_rate;
    const float decay = __fsub_rn(1.0f, (float)(learning_rate * seg.weight_decay));
    const float one_minus_beta1 = __fsub_rn(1.0f, beta1);
    const float one_minus_beta2 = __fsub_rn(1.0f, beta2);
    for (i64 i = segment_start(); i < seg.length; i += segment_stride()) {
        const float g = seg.grad[i];
        const float m = __fadd_rn(__fmul_rn(beta1, seg.m[i]), __fmul_rn(one_minus_beta1, g));
        const float v = __fadd_rn(__fmul_rn(beta2, seg.v[i]), __fmul_rn(__fmul_rn(one_minus_beta2, g), g));
        seg.m[i] = m;
        seg.v[i] = v;
        const float m_hat = __fmul_rn(m, inv_c1);
        const float denominator = __fadd_rn(__fmul_rn(__fsqrt_rn(v), inv_sqrt_c2), epsilon);
        seg.param[i] = __fsub_rn(__fmul_rn(seg.param[i], decay), __fdiv_rn(__fmul_rn(lr, m_hat), denominator));
    }
}

extern "C" __global__ void sumsq_partials(float* partials, const TensorSegment* segments, int count) {
    const int s = blockIdx.y;
    if (s >= count) {
        return;
    }
    const TensorSegment seg = segments[s];
    float sum = 0.0f;
    for (i64 i = segment_start(); i < seg.length; i += segment_stride()) {
        const float x = seg.data[i];
        sum += x * x;
    }
    sum = block_reduce_sum(sum);
    if (threadIdx.x == 0) {
        partials[(i64)s * gridDim.x + blockIdx.x] = sum;
    }
}

extern "C" __global__ void sumsq_finish(double* result, const float* partials, int n) {
    double sum = 0.0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        sum += (double)partials[i];
    }
    sum = block_reduce_sum_double(sum);
    if (threadIdx.x == 0) {
        *result = sum;
    }
}

extern "C" __global__ void scale_segments(const TensorSegment* segments, int count, float factor) {
    const int s = blockIdx.y;
    if (s >= count) {
        return;
    }
    const TensorSegment seg = segments[s];
    for (i64 i = segment_start(); i < seg.length; i += segment_stride()) {
        seg.data[i] *= factor;
    }
}

extern "C" __global__ void orthonormalize_rows(const MatrixSegment* matrices, int count, int* error) {
    const int k = blockIdx.x;
    if (k >= count) {
        return;
    }
    const MatrixSegment a = matrices[k];
    const int r = a.rows;
    const i64 d = a.columns;
    if (r > d) {
        if (threadIdx.x == 0 && error != nullptr) {
            *error = 1;
        }
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < r; i++) {
            float* row = a.data + i * d;
            for (int j = 0; j < i; j++) {
                const float* previous = a.data + j * d;
                float dot = 0.0f;
                for (i64 c = threadIdx.x; c < d; c += blockDim.x) {
                    dot += row[c] * previous[c];
                }
                const float projection = block_reduce_sum(dot);
                for (i64 c = threadIdx.x; c < d; c += blockDim.x) {
                    row[c] = previous[c] * -projection + row[c];
                }
            }
            float squares = 0.0f;
            for (i64 c = threadIdx.x; c < d; c += blockDim.x) {
                squares += row[c] * row[c];
            }
            const float norm = sqrtf(block_reduce_sum(squares));
            if (!(norm > 0.0f && norm <= 3.402823466e38f)) {
                if (threadIdx.x == 0 && error != nullptr) {
                    *error = 1;
                }
                continue;
            }
            for (i64 c = threadIdx.x; c < d; c += blockDim.x) {
                row[c] = row[c] / norm;
            }
        }
    }
}

extern "C" __global__ void optimizer_layout(int* out) {
    if (blockIdx.x != 0 || threadIdx.x != 0) {
        return;
    }
    AdamWSegment a{};
    TensorSegment t{};
    MatrixSegment x{};
    const char* ab = reinterpret_cast<const char*>(&a);
    const char* tb = reinterpret_cast<const char*>(&t);
    const char* xb = reinterpret_cast<const char*>(&x);
    out[0] = (int)sizeof(AdamWSegment);
    out[1] = (int)(reinterpret_cast<const char*>(&a.param) - ab);
    out[2] = (int)(reinterpret_cast<const char*>(&a.grad) - ab);
    out[3] = (int)(reinterpret_cast<const char*>(&a.m) - ab);
    out[4] = (int)(reinterpret_cast<const char*>(&a.v) - ab);
    out[5] = (int)(reinterpret_cast<const char*>(&a.length) - ab);
    out[6] = (int)(reinterpret_cast<const char*>(&a.weight_decay) - ab);
    out[7] = (int)sizeof(TensorSegment);
    out[8] = (int)(reinterpret_cast<const char*>(&t.data) - tb);
    out[9] = (int)(reinterpret_cast<const char*>(&t.length) - tb);
    out[10] = (int)sizeof(MatrixSegment);
    out[11] = (int)(reinterpret_cast<const char*>(&x.data) - xb);
    out[12] = (int)(reinterpret_cast<const char*>(&x.rows) - xb);
    out[13] = (int)(reinterpret_cast<const char*>(&x.columns) - xb);
}
