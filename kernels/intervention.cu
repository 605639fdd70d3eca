/*
ReFT interventions, fused: one edit of selected rows of the residual stream, in the unified form every pyreft
type fits (InterventionTensors on the host; LoReFT quotes h + R^T (W h + b - R h)):

  Phi(h) = (h + P^T delta) * m        delta = act(W h + b) - [subtract] P h     (W present)
                                      delta = act(b)       - [subtract] P h     (no W: a constant source)
  act: linear, relu, silu (x / (1 + exp(-x))), tanh; m: the dropout scale (1 when absent).

  intervention_forward              y = Phi(h) per row; optionally saves the input row (see Rows below)
  intervention_backward_coeffs      per row: g = dy * m, pre_k = W_k h + b_k (pre_k = b_k without W),
                                    delta_k, pg_k = P_k . g, dv_k = pg_k * act'(pre_k)
  intervention_backward_parameters  dP[k,c] += sum_i delta_ik g_ic - [subtract] pg_ik h_ic
                                    dW[k,c] += sum_i dv_ik h_ic            db[k] += sum_i dv_ik
  intervention_backward_input       dh = g - [subtract] P^T pg + W^T dv   (W^T dv only with W)

Shapes: h, y, dy, dh bf16 rows of width d (= dim); P, W (r, d) f32, b (r) f32; m (N, d) f32 or null; dP, dW,
db f32 like P, W, b; coefficients (N, 3r) f32 scratch: row i holds [delta_i | pg_i | dv_i].

Rows (the fusion): a row list index[N] (int32, or null for the identity) lets the kernels work straight on the
residual stream (M, d) without a gather and a scatter: the residual-stream tensors are read and written at row
index[i] (forward's h and y; backward's dy and dh), everything per intervened row is compact, row i (forward's
saved input, backward's h, m, the coefficients). Forward in place (y == h) edits the stream; its saved output
(when not null) receives the original rows, which backward takes as its compact h. Backward in place (dh == dy)
turns the stream's gradient at those rows into the gradient before the edit, rows not listed untouched. Rows
must be distinct (a layer's interventions are disjoint). An index outside [0, M) touches nothing: forward skips
the row, backward zeroes its coefficients (no gradient from it) and leaves dh alone, and *error = 1 (when error
is not null) for the caller to check after the step.

Forward saves the input rows (N x d bf16, exact copies) when given somewhere to put them, which an edit in place
needs; nothing else: backward recomputes the row's dot products (W h, P h, and P g) rather than keeping them, at
the cost of one read of h and dy per row.

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. dP, dW, db are parameter gradients: +=. dh is the activation
gradient of the rows before the edit: written (in place over dy, which is how the stream's gradient flows through
an edit that replaced its rows).

Determinism: no float atomics. Each dot product has a fixed partition over lanes and warps; the parameter
gradients are one thread per (k, column) summing the rows in index order, so two runs give identical bits.
Backward is three launches so that dh may overwrite dy: the parameter pass still reads dy.

One block per row for the row kernels (blockDim.x a multiple of 32, at most 256): the block's warps share the
row's dot products, each warp a (dot, column segment) task, the segments' sums added in a fixed order; then each
thread writes its columns, each column reading delta (or pg, dv) from shared memory and the r parameter values of
its column. The row is read from global memory (it stays in L1 between the passes) rather than staged in shared
memory, so d has no shared-memory limit. Dynamic shared memory: (r + max(3r, warps)) floats. Per output element
the work is O(r): these kernels are for r << d (the launcher caps r).
*/
#include "common.cuh"

// The intervention's parameters, passed by value (a kernel argument like any other: it keeps the launches within
// the host's 9-argument helpers and needs no device copy). Mirrored by InterventionKernels.NativeParameters on the
// host: keep the fields of the two in the same order.
struct InterventionParams {
    const float* projection; // P (rank, dim)
    const float* weight;     // W (rank, dim), or null: the source is act(b)
    const float* bias;       // b (rank)
    int rank;
    int dim;
    int subtract;   // 1: delta = s - P h
    int activation; // 0 linear, 1 relu, 2 silu, 3 tanh (NativeReft.Backends.Activation)
};

// The rows an intervention edits. Mirrored by InterventionKernels.NativeRows on the host.
struct InterventionRows {
    const int* index; // (count) row of the residual stream for intervened row i, or null: row i itself
    int* error;       // set to 1 when an index is outside [0, residual_rows); may be null
    int count;        // N, intervened rows
    int residual_rows; // M, rows of the residual-stream tensors
};

#define ACTIVATION_LINEAR 0
#define ACTIVATION_RELU 1
#define ACTIVATION_SILU 2
#define ACTIVATION_TANH 3

__device__ __forceinline__ float activate(int activation, float x) {
    switch (activation) {
    case ACTIVATION_RELU:
        return x > 0.0f ? x : 0.0f;
    case ACTIVATION_SILU:
        return x / (1.0f + expf(-x));
    case ACTIVATION_TANH:
        return tanhf(x);
    default:
        return x;
    }
}

__device__ __forceinline__ float activation_grad(int activation, float x) {
    switch (activation) {
    case ACTIVATION_RELU:
        return x > 0.0f ? 1.0f : 0.0f;
    case ACTIVATION_SILU: {
        const float s = 1.0f / (1.0f + expf(-x));
        return s * (1.0f + x * (1.0f - s));
    }
    case ACTIVATION_TANH: {
        const float t = tanhf(x);
        return 1.0f - t * t;
    }
    default:
        return 1.0f;
    }
}

// The residual-stream row of intervened row i, or -1 (and the error flag) when the index is out of range.
// Uniform across the block, so a block may return on -1 before any barrier.
__device__ __forceinline__ i64 stream_row(const InterventionRows& rows, int i) {
    const int row = rows.index == nullptr ? i : rows.index[i];
    if (row < 0 || row >= rows.residual_rows) {
        if (threadIdx.x == 0 && rows.error != nullptr) {
            *rows.error = 1;
        }
        return -1;
    }
    return row;
}

// The dot products of one row. Job j is a[j] . v, with a[j] a parameter row (f32) and v = x (bf16) or x * scale:
//   j in [0, weight_jobs)                    W_j . h
//   j in [weight_jobs, + projection_jobs)    P_k . h
//   j in [.., + gradient_jobs)               P_k . (g * m)
// Each warp takes (job, segment) tasks, segments = max(1, warps / jobs) slices of the columns, so a row with few
// dot products still keeps every warp busy; partial[job * segments + segment] holds a task's sum.
struct RowDots {
    const float* weight;
    const float* projection;
    const bf16* h;
    const bf16* g;
    const float* scale; // multiplies g; may be null
    int weight_jobs;
    int projection_jobs;
    int gradient_jobs;
    int dim;
    int segments;

    __device__ __forceinline__ int jobs() const { return weight_jobs + projection_jobs + gradient_jobs; }

    // Fills partial[0, jobs * segments) and ends with a barrier.
    __device__ __forceinline__ void run(float* partial) const {
        const int warps = blockDim.x / WARP_SIZE;
        const int warp = threadIdx.x / WARP_SIZE;
        const int lane = threadIdx.x % WARP_SIZE;
        const int length = (dim + segments - 1) / segments;
        const int tasks = jobs() * segments;
        for (int task = warp; task < tasks; task += warps) {
            const int job = task / segments;
            const int begin = (task - job * segments) * length;
            const int end = min(dim, begin + length);
            float sum = 0.0f;
            if (job < weight_jobs) {
                const float* a = weight + (i64)job * dim;
                for (int c = begin + lane; c < end; c += WARP_SIZE) {
                    sum += a[c] * bf16_to_float(h[c]);
                }
            } else if (job < weight_jobs + projection_jobs) {
                const float* a = projection + (i64)(job - weight_jobs) * dim;
                for (int c = begin + lane; c < end; c += WARP_SIZE) {
                    sum += a[c] * bf16_to_float(h[c]);
                }
            } else {
                const float* a = projection + (i64)(job - weight_jobs - projection_jobs) * dim;
                for (int c = begin + lane; c < end; c += WARP_SIZE) {
                    const float gc = scale == nullptr ? bf16_to_float(g[c]) : bf16_to_float(g[c]) * scale[c];
                    sum += a[c] * gc;
                }
            }
            sum = warp_reduce_sum(sum);
            if (lane == 0) {
                partial[task] = sum;
            }
        }
        __syncthreads();
    }

    // Job j's dot product: its segments added in order (after run's barrier).
    __device__ __forceinline__ float total(const float* partial, int job) const {
        float sum = 0.0f;
        for (int s = 0; s < segments; s++) {
            sum += partial[job * segments + s];
        }
        return sum;
    }
};

__device__ __forceinline__ int dot_segments(int jobs) {
    const int warps = blockDim.x / WARP_SIZE;
    return jobs >= warps || jobs == 0 ? 1 : warps / jobs;
}

// y[index[i]] = Phi(h[index[i]]); saved[i] = h[index[i]] when saved is not null. y may be h (in place): every
// read of the row for the dot products happens before the barriers, and the last pass reads and writes each
// column in the same thread. saved must not alias h or y.
extern "C" __global__ void intervention_forward(bf16* y, bf16* saved, const bf16* h, const float* scale,
                                                InterventionRows rows, InterventionParams p) {
    const int i = blockIdx.x;
    if (i >= rows.count) {
        return;
    }
    const i64 row = stream_row(rows, i);
    if (row < 0) {
        return;
    }
    const int r = p.rank;
    const int dim = p.dim;
    const bf16* x = h + row * dim;
    float* delta = dynamic_shared<float>();
    float* partial = delta + r;

    RowDots dots;
    dots.weight = p.weight;
    dots.projection = p.projection;
    dots.h = x;
    dots.g = nullptr;
    dots.scale = nullptr;
    dots.weight_jobs = p.weight != nullptr ? r : 0;
    dots.projection_jobs = p.subtract ? r : 0;
    dots.gradient_jobs = 0;
    dots.dim = dim;
    dots.segments = dot_segments(dots.jobs());
    dots.run(partial);

    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        const float pre = p.bias[k] + (p.weight != nullptr ? dots.total(partial, k) : 0.0f);
        float d = activate(p.activation, pre);
        if (p.subtract) {
            d -= dots.total(partial, dots.weight_jobs + k);
        }
        delta[k] = d;
    }
    __syncthreads();

    const float* m = scale == nullptr ? nullptr : scale + (i64)i * dim;
    bf16* out = y + row * dim;
    bf16* keep = saved == nullptr ? nullptr : saved + (i64)i * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        const bf16 xc = x[c];
        float edit = 0.0f;
        for (int k = 0; k < r; k++) {
            edit += delta[k] * p.projection[(i64)k * dim + c];
        }
        float v = bf16_to_float(xc) + edit;
        if (m != nullptr) {
            v *= m[c];
        }
        if (keep != nullptr) {
            keep[c] = xc;
        }
        out[c] = float_to_bf16(v);
    }
}

// coefficients[i] = [delta | pg | dv] of intervened row i; h is compact (row i), dy is read at index[i].
extern "C" __global__ void intervention_backward_coeffs(float* coefficients, const bf16* h, const bf16* dy,
                                                              const float* scale, InterventionRows rows,
                                                              InterventionParams p) {
    const int i = blockIdx.x;
    if (i >= rows.count) {
        return;
    }
    const int r = p.rank;
    const int dim = p.dim;
    float* out = coefficients + (i64)i * 3 * r;
    const i64 row = stream_row(rows, i);
    if (row < 0) {
        for (int k = threadIdx.x; k < 3 * r; k += blockDim.x) {
            out[k] = 0.0f;
        }
        return;
    }
    float* partial = dynamic_shared<float>();

    RowDots dots;
    dots.weight = p.weight;
    dots.projection = p.projection;
    dots.h = h + (i64)i * dim;
    dots.g = dy + row * dim;
    dots.scale = scale == nullptr ? nullptr : scale + (i64)i * dim;
    dots.weight_jobs = p.weight != nullptr ? r : 0;
    dots.projection_jobs = p.subtract ? r : 0;
    dots.gradient_jobs = r;
    dots.dim = dim;
    dots.segments = dot_segments(dots.jobs());
    dots.run(partial);

    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        const float pre = p.bias[k] + (p.weight != nullptr ? dots.total(partial, k) : 0.0f);
        float delta = activate(p.activation, pre);
        if (p.subtract) {
            delta -= dots.total(partial, dots.weight_jobs + k);
        }
        const float pg = dots.total(partial, dots.weight_jobs + dots.projection_jobs + k);
        out[k] = delta;
        out[r + k] = pg;
        out[2 * r + k] = pg * activation_grad(p.activation, pre);
    }
}

// One thread per (k = blockIdx.y, column), the rows summed in index order: deterministic, no atomics. dW may be
// null (no W); db is summed by the thread of column 0.
extern "C" __global__ void intervention_backward_parameters(float* dP, float* dW, float* db,
                                                            const float* coefficients, const bf16* h,
                                                            const bf16* dy, const float* scale,
                                                            InterventionRows rows, InterventionParams p) {
    const int k = blockIdx.y;
    const int r = p.rank;
    const int dim = p.dim;
    for (i64 c = (i64)blockIdx.x * blockDim.x + threadIdx.x; c < dim; c += (i64)gridDim.x * blockDim.x) {
        float acc_p = 0.0f;
        float acc_w = 0.0f;
        float acc_b = 0.0f;
        for (int i = 0; i < rows.count; i++) {
            const int row = rows.index == nullptr ? i : rows.index[i];
            if (row < 0 || row >= rows.residual_rows) {
                continue; // flagged by the coefficients pass
            }
            const float* co = coefficients + (i64)i * 3 * r;
            const float x = bf16_to_float(h[(i64)i * dim + c]);
            float g = bf16_to_float(dy[(i64)row * dim + c]);
            if (scale != nullptr) {
                g *= scale[(i64)i * dim + c];
            }
            acc_p += co[k] * g;
            if (p.subtract) {
                acc_p -= co[r + k] * x;
            }
            const float dv = co[2 * r + k];
            acc_w += dv * x;
            acc_b += dv;
        }
        const i64 at = (i64)k * dim + c;
        dP[at] += acc_p;
        if (dW != nullptr) {
            dW[at] += acc_w;
        }
        if (c == 0) {
            db[k] += acc_b;
        }
    }
}

// dh[index[i]] = g - [subtract] P^T pg + W^T dv, g = dy[index[i]] * m[i]. dh may be dy (in place): each column is
// read and written by one thread.
extern "C" __global__ void intervention_backward_input(bf16* dh, const bf16* dy, const float* scale,
                                                       const float* coefficients, InterventionRows rows,
                                                       InterventionParams p) {
    const int i = blockIdx.x;
    if (i >= rows.count) {
        return;
    }
    const int row = rows.index == nullptr ? i : rows.index[i];
    if (row < 0 || row >= rows.residual_rows) {
        return; // flagged by the coefficients pass
    }
    const int r = p.rank;
    const int dim = p.dim;
    float* pg = dynamic_shared<float>();
    float* dv = pg + r;
    const float* co = coefficients + (i64)i * 3 * r;
    for (int k = threadIdx.x; k < r; k += blockDim.x) {
        pg[k] = co[r + k];
        dv[k] = co[2 * r + k];
    }
    __syncthreads();

    const float* m = scale == nullptr ? nullptr : scale + (i64)i * dim;
    const bf16* gr = dy + (i64)row * dim;
    bf16* out = dh + (i64)row * dim;
    for (int c = threadIdx.x; c < dim; c += blockDim.x) {
        float v = bf16_to_float(gr[c]);
        if (m != nullptr) {
            v *= m[c];
        }
        for (int k = 0; k < r; k++) {
            const i64 at = (i64)k * dim + c;
            if (p.subtract) {
                v -= pg[k] * p.projection[at];
            }
            if (p.weight != nullptr) {
                v += dv[k] * p.weight[at];
            }
        }
        out[c] = float_to_bf16(v);
    }
}
