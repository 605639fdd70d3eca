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
                        lr, inv_c1 and inv_sqrt_c2 are read from the step's StepValues, not passed by value,
                        so a captured step (a CUDA graph) takes each replay's learning rate and step count.
  sumsq_partials        partials[s * gridDim.x + b] = sum of x^2 over block b's share of segment s (fp32)
  sumsq_finish          *result = sum of the partials in a fixed order, in double: the global squared gradient
                        norm. No atomics: the same inputs give the same bits, run after run.
  scale_segments        x *= factor over every segment
  clip_segments         gradient clipping with the norm where it was computed: n = sqrt(step->sumsq); when
                        max_norm > 0 and n is finite and n > max_norm, x *= (float)(max_norm / (n + 1e-6)) over
                        every segment (the host's rule and arithmetic, in double, so the same bits).
  step_after            next->loss = a non-finite value when *previous is not finite: a step queued behind one
                        that diverged (before the host read it) changes nothing either, since its adamw_step and
                        orthonormalize_rows see a non-finite loss, which its cross-entropy sums keep so
  orthonormalize_rows   for each matrix R (r, d), r <= d, in place: modified Gram-Schmidt of the rows, twice
                        ("twice is enough": R R^T = I to fp32 rounding after the second pass):
                          for i: for j < i: row_i -= (row_i . row_j) row_j;  row_i /= |row_i|

A training step keeps its scalars on the device (struct StepValues): the loss the cross-entropy adds, the norm
sumsq_finish writes, the learning rate and bias corrections the host sets. The host reads them once, after the
step, instead of waiting for the loss and the norm in the middle of it. adamw_step and orthonormalize_rows do
nothing when the step's loss or norm is not finite (a diverged step leaves the parameters as they were, for the
host to report), and clip_segments leaves a non-finite norm unclipped, as the host did.
  optimizer_layout      writes the size and field offsets of the four structs, for the test that the C# mirrors
                        (NativeReft.Cuda.AdamWSegment, TensorSegment, MatrixSegment, StepValues) agree

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

Launches: adamw_step, sumsq_partials, scale_segments and clip_segments run a grid (blocks per segment,
segments): block (b, s) grid-strides over segment s with 64-bit indices, so any length runs with any grid.
sumsq_finish is one block. orthonormalize_rows is one block per matrix (grid.x = matrices): every thread owns
the columns c = threadIdx.x (mod blockDim.x) of every row, so the only communication is the block reductions of
the dot products and norms (2 * (r(r-1)/2 + r) of them per matrix). blockDim.x a multiple of 32 everywhere.
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

// The scalars of one training step, kept on the device until its end. Mirrored by NativeReft.Cuda.StepValues.
struct StepValues {
    double loss;           //  0: the step's summed loss (crossentropy_sum adds each micro-batch's)
    double sumsq;          //  8: the gradients' squared global norm (sumsq_finish writes it)
    double learning_rate;  // 16: AdamW's, set by the host for the step
    float inv_c1;          // 24: 1 / (1 - beta1^t), computed by the host in double
    float inv_sqrt_c2;     // 28: 1 / sqrt(1 - beta2^t)
};                         // 32 bytes
static_assert(sizeof(StepValues) == 32, "StepValues is mirrored in C#: 32 bytes");

// Neither NaN nor infinite (no libm call, so the same on the emulator).
__device__ __forceinline__ bool is_finite(double x) {
    return x >= -1.7976931348623157e308 && x <= 1.7976931348623157e308;
}

// A step whose loss and gradient norm are finite: the optimizer may update the parameters.
__device__ __forceinline__ bool step_is_finite(const StepValues* step) {
    return is_finite(step->loss) && is_finite(step->sumsq);
}

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

extern "C" __global__ void adamw_step(const AdamWSegment* segments, int count, const StepValues* step, float beta1,
                                      float beta2, float epsilon) {
    const int s = blockIdx.y;
    if (s >= count || !step_is_finite(step)) {
        return;
    }
    const AdamWSegment seg = segments[s];
    const double learning_rate = step->learning_rate;
    const float inv_c1 = step->inv_c1;
    const float inv_sqrt_c2 = step->inv_sqrt_c2;
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

// The block's share of x *= factor over one segment.
__device__ __forceinline__ void scale_segment(const TensorSegment seg, float factor) {
    for (i64 i = segment_start(); i < seg.length; i += segment_stride()) {
        seg.data[i] *= factor;
    }
}

extern "C" __global__ void scale_segments(const TensorSegment* segments, int count, float factor) {
    const int s = blockIdx.y;
    if (s >= count) {
        return;
    }
    scale_segment(segments[s], factor);
}

extern "C" __global__ void clip_segments(const TensorSegment* segments, int count, const StepValues* step,
                                         double max_norm) {
    const int s = blockIdx.y;
    const double norm = sqrt(step->sumsq);
    if (s >= count || !(max_norm > 0.0) || !is_finite(norm) || !(norm > max_norm)) {
        return;
    }
    scale_segment(segments[s], (float)(max_norm / (norm + 1e-6)));
}

extern "C" __global__ void step_after(StepValues* next, const StepValues* previous) {
    if (blockIdx.x == 0 && threadIdx.x == 0 && !step_is_finite(previous)) {
        next->loss = is_finite(previous->loss) ? previous->sumsq : previous->loss; // whichever is not finite
    }
}

extern "C" __global__ void orthonormalize_rows(const MatrixSegment* matrices, int count, const StepValues* step,
                                               int* error) {
    const int k = blockIdx.x;
    if (k >= count || (step != nullptr && !step_is_finite(step))) {
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
    StepValues v{};
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
    const char* vb = reinterpret_cast<const char*>(&v);
    out[14] = (int)sizeof(StepValues);
    out[15] = (int)(reinterpret_cast<const char*>(&v.loss) - vb);
    out[16] = (int)(reinterpret_cast<const char*>(&v.sumsq) - vb);
    out[17] = (int)(reinterpret_cast<const char*>(&v.learning_rate) - vb);
    out[18] = (int)(reinterpret_cast<const char*>(&v.inv_c1) - vb);
    out[19] = (int)(reinterpret_cast<const char*>(&v.inv_sqrt_c2) - vb);
}
