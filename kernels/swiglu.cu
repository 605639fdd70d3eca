/*
SwiGLU, the gate of LLaMA's MLP: out = silu(gate) * up, silu(g) = g * sigmoid(g) = g / (1 + exp(-g)).

  swiglu_forward    out[i] = bf16(silu(gate[i]) * up[i])
  swiglu_backward   dup[i]   = bf16(dout[i] * silu(gate[i]))
                    dgate[i] = bf16(dout[i] * up[i] * s * (1 + gate[i] * (1 - s))),  s = sigmoid(gate[i])

Shapes: gate, up, out, dout, dgate, dup (N, F) bf16, flattened to n = N * F elements (F = intermediate_size).

Forward saves nothing: backward recomputes sigmoid from gate and up, which the MLP keeps anyway (they are the
inputs of this op). Every element is read and then written by the same thread, so out may alias gate or up,
dgate may alias gate and dup may alias up (the backward reads both inputs before it writes).

Gradient rule (as in every kernel file): parameter gradients accumulate (+=), activation gradients overwrite
(=), the residual stream's gradient accumulates. Both gradients here are activation gradients: written.

fp32 arithmetic, one rounding to bf16 per output; expf (not __expf) so the GPU and the emulator agree closely.
Grid-stride loop over 64-bit indices, 8 elements (128 bits) per access when the tensors are 16-byte aligned; the
launcher sizes the grid for n / 8 threads.
*/
#include "common.cuh"

__device__ __forceinline__ float sigmoidf(float g) {
    return 1.0f / (1.0f + expf(-g));
}

// Elements [begin, end) of the backward, W at a time (end - begin a multiple of W).
template <int W>
__device__ __forceinline__ void swiglu_backward_span(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate,
                                                     const bf16* up, i64 begin, i64 end) {
    for (i64 i = begin + global_thread_index() * W; i < end; i += grid_stride() * W) {
        const Pack<bf16, W> g = load_pack<W>(gate + i);
        const Pack<bf16, W> u = load_pack<W>(up + i);
        const Pack<bf16, W> d = load_pack<W>(dout + i);
        Pack<bf16, W> dg;
        Pack<bf16, W> du;
        for (int k = 0; k < W; k++) {
            const float gk = bf16_to_float(g[k]);
            const float dk = bf16_to_float(d[k]);
            const float sk = sigmoidf(gk);
            du[k] = float_to_bf16(dk * gk * sk);
            dg[k] = float_to_bf16(dk * bf16_to_float(u[k]) * sk * (1.0f + gk * (1.0f - sk)));
        }
        store_pack<W>(dup + i, du);
        store_pack<W>(dgate + i, dg);
    }
}

// 128 bits at a time when every tensor is 16-byte aligned, then the tail (n % 8) element by element.
extern "C" __global__ void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, i64 n) {
    map2(out, gate, up, n, [](float g, float u) { return g * sigmoidf(g) * u; });
}

extern "C" __global__ void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate,
                                           const bf16* up, i64 n) {
    const i64 packed = aligned16(dgate, dup, dout, gate, up) ? n / BF16_PACK * BF16_PACK : 0;
    swiglu_backward_span<BF16_PACK>(dgate, dup, dout, gate, up, 0, packed);
    swiglu_backward_span<1>(dgate, dup, dout, gate, up, packed, n);
}
