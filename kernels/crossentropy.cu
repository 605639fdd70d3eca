/*
Cross-entropy of the LM head's logits against target token ids, fused with its backward: the loss head is the
one place where forward and backward run back to back, so one kernel reads each row of logits twice (an online
max/sum pass, then the gradient pass) and never materialises fp32 probabilities.

  crossentropy_forward_backward
      M_i       = max_j z[i, j]
      S_i       = sum_j exp(z[i, j] - M_i)
      loss[i]   = log(S_i) + M_i - z[i, t_i]                                  (fp32; 0 for an ignored row)
      dz[i, j]  = bf16(exp(z[i, j] - M_i) * (s / S_i) - s * [j == t_i])       s = gradScale
                = bf16(s * (softmax(z_i)_j - onehot(t_i)_j))                  (a zero row for an ignored row)

  crossentropy_sum
      *total += sum_i loss[i], in double, in row order (the host's order: the same bits as summing on the host)

A training step adds each micro-batch's loss to its total on the device (StepValues.loss in optimizer.cu), so
the host does not wait for the loss in the middle of the step. One thread: a few thousand rows at most, a few
microseconds, and no tree to change the order.

Shapes: z (N, V) bf16 logits, N = B*T rows, V = vocab_size; targets t (N) int32; losses (N) f32; dz (N, V)
bf16. dz may alias z (in place): the gradient overwrites the logits it came from, which is what training wants
(the logits are dead after the loss) and saves an (N, V) buffer, 1 GB for 4k tokens of a 128k vocabulary.

Forward saves nothing: the backward is computed here, in the same pass. gradScale folds the mean over labelled
tokens (1 / count) and any loss scaling into the gradient; the losses are unscaled, as CpuBackend's
CrossEntropy returns them (their sum is its return value; the caller sums the N losses).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. dz is an activation gradient: written, never accumulated.

Ignored rows: a negative target (a prompt token, padding) gives loss 0 and a zero gradient row. Bounds: a
target >= V is a caller's bug (CpuBackend throws); the row is treated as ignored and *error = 1 is set when
error is not null, for the caller to check after the step (as in rope.cu and embedding.cu).

Numerics: bf16 storage, fp32 compute. Each thread keeps a running (max m, sum s of exp(z - m)) over the
elements it reads (one exp per element: when a new max arrives the old sum is rescaled), then the block
combines: M = max over threads, S = sum over threads of s * exp(m - M). Logits of any magnitude (+-80, where
exp overflows fp32) are safe, as every exponent is <= 0. The same formula as CpuBackend's, summed in another
order (per thread, then a tree), so the loss agrees to fp32 rounding, the gradient to bf16 rounding.

One block per row (grid.x = N), blockDim.x a multiple of 32 (the launcher picks 32..512 from V). Reads and
writes 128 bits at a time when V % 8 == 0 and both pointers are 16-byte aligned (every LLaMA vocabulary:
32000, 128256), else one element at a time. Every thread reads and writes only its own elements, so the in-place
case needs no barrier beyond the reductions'; z[t] is read before them, so before any element is written.
*/
#include "common.cuh"

// Below any finite logit and far from -inf, so that exp(m - x) stays 0, never NaN (-inf - -inf), for a thread
// that has read nothing or only -inf.
#define CE_LOWEST (-3.0e38f)

__device__ __forceinline__ float block_reduce_max(float v) {
    __shared__ float partial_max[WARP_SIZE];
    const int lane = threadIdx.x % WARP_SIZE;
    const int warp = threadIdx.x / WARP_SIZE;
    const int warps = blockDim.x / WARP_SIZE;
    v = warp_reduce_max(v);
    __syncthreads();
    if (lane == 0) {
        partial_max[warp] = v;
    }
    __syncthreads();
    v = lane < warps ? partial_max[lane] : CE_LOWEST;
    return warp_reduce_max(v);
}

// Adds x to the running (max, sum of exp(. - max)).
__device__ __forceinline__ void online_softmax_add(float& m, float& s, float x) {
    if (x > m) {
        s = s * expf(m - x) + 1.0f;
        m = x;
    } else {
        s += expf(x - m);
    }
}

extern "C" __global__ void crossentropy_forward_backward(bf16* dlogits, float* losses, int* error, const bf16* logits,
                                                         const int* targets, float grad_scale, int rows, int vocab) {
    const int row = blockIdx.x;
    if (row >= rows) {
        return;
    }
    const i64 offset = (i64)row * vocab;
    const bf16* z = logits + offset;
    bf16* dz = dlogits + offset;
    int target = targets[row];
    if (target >= vocab) {
        if (threadIdx.x == 0 && error != nullptr) {
            *error = 1;
        }
        target = -1;
    }
    const int pack = Packed128<bf16>::size;
    const bool vector = vocab % pack == 0 && (((u64)logits | (u64)dlogits) & 15) == 0;
    if (target < 0) {
        if (vector) {
            Packed128<bf16> zero;
            for (int k = 0; k < pack; k++) {
                zero[k].bits = 0;
            }
            for (int c = threadIdx.x * pack; c < vocab; c += blockDim.x * pack) {
                store128(dz + c, zero);
            }
        } else {
            for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
                dz[c].bits = 0;
            }
        }
        if (threadIdx.x == 0) {
            losses[row] = 0.0f;
        }
        return;
    }

    // Read before the reductions' barriers, so before any thread overwrites it in place.
    const float z_target = threadIdx.x == 0 ? bf16_to_float(z[target]) : 0.0f;
    float m = CE_LOWEST;
    float s = 0.0f;
    if (vector) {
        for (int c = threadIdx.x * pack; c < vocab; c += blockDim.x * pack) {
            Packed128<bf16> v = load128(z + c);
            for (int k = 0; k < pack; k++) {
                online_softmax_add(m, s, bf16_to_float(v[k]));
            }
        }
    } else {
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            online_softmax_add(m, s, bf16_to_float(z[c]));
        }
    }
    const float row_max = block_reduce_max(m);
    const float sum = block_reduce_sum(s * expf(m - row_max));
    if (threadIdx.x == 0) {
        losses[row] = logf(sum) + row_max - z_target;
    }

    const float k_scale = grad_scale / sum;
    if (vector) {
        for (int c = threadIdx.x * pack; c < vocab; c += blockDim.x * pack) {
            Packed128<bf16> v = load128(z + c);
            Packed128<bf16> g;
            for (int k = 0; k < pack; k++) {
                float p = expf(bf16_to_float(v[k]) - row_max) * k_scale;
                g[k] = float_to_bf16(c + k == target ? p - grad_scale : p);
            }
            store128(dz + c, g);
        }
    } else {
        for (int c = threadIdx.x; c < vocab; c += blockDim.x) {
            float p = expf(bf16_to_float(z[c]) - row_max) * k_scale;
            dz[c] = float_to_bf16(c == target ? p - grad_scale : p);
        }
    }
}

extern "C" __global__ void crossentropy_sum(double* total, const float* losses, int rows) {
    if (blockIdx.x != 0 || threadIdx.x != 0) {
        return;
    }
    double sum = 0.0;
    for (int i = 0; i < rows; i++) {
        sum += (double)losses[i];
    }
    *total += sum;
}
