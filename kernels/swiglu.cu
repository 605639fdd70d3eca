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
Grid-stride loop over 64-bit indices.
*/
#include "common.cuh"

__device__ __forceinline__ float sigmoidf(float g) {
    return 1.0f / (1.0f + expf(-g));
}

extern "C" __global__ void swiglu_forward(bf16* out, const bf16* gate, const bf16* up, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        float g = bf16_to_float(gate[i]);
        float u = bf16_to_float(up[i]);
        out[i] = float_to_bf16(g * sigmoidf(g) * u);
    }
}

extern "C" __global__ void swiglu_backward(bf16* dgate, bf16* dup, const bf16* dout, const bf16* gate,
                                           const bf16* up, i64 n) {
    for (i64 i = global_thread_index(); i < n; i += grid_stride()) {
        float g = bf16_to_float(gate[i]);
        float u = bf16_to_float(up[i]);
        float d = bf16_to_float(dout[i]);
        float s = sigmoidf(g);
        dup[i] = float_to_bf16(d * g * s);
        dgate[i] = float_to_bf16(d * u * s * (1.0f + g * (1.0f - s)));
    }
}
