using NativeReft.Backends;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda;

/// <summary>The work formulas the step breakdown and the kernel suite divide by their timings.</summary>
public sealed class OpWorkTests
{
    [Test]
    public void A_linear_layer_does_two_flops_per_weight_per_row_and_reads_its_addend_once_more()
    {
        var plain = OpWork.Linear(m: 3, k: 5, n: 7);
        Assert.That(plain.Flops, Is.EqualTo(2.0 * 3 * 5 * 7));
        Assert.That(plain.Bytes, Is.EqualTo(2.0 * (3 * 5 + 7 * 5 + 3 * 7)));
        Assert.That(OpWork.Linear(3, 5, 7, addend: true).Bytes - plain.Bytes, Is.EqualTo(2.0 * 3 * 7));
        Assert.That(OpWork.LinearInputGrad(3, 5, 7, accumulate: true).Bytes - OpWork.LinearInputGrad(3, 5, 7, accumulate: false).Bytes, Is.EqualTo(2.0 * 3 * 5));
    }

    [TestCase(5, 5, 0, 15)]     // a whole causal sequence: T (T + 1) / 2
    [TestCase(1, 10, 9, 10)]    // one decoded token sees every cached key and itself
    [TestCase(3, 7, 4, 18)]     // a prefill after 4 cached keys: 5 + 6 + 7
    public void Attention_counts_the_pairs_the_causal_mask_lets_through(int queries, int keys, int offset, double pairs)
    {
        var shape = new AttentionShape(2, queries, keys, keys, offset, Heads: 4, KvHeads: 2, HeadSize: 8);
        Assert.That(OpWork.VisiblePairs(shape), Is.EqualTo(pairs));
        Assert.That(OpWork.Attention(shape).Flops, Is.EqualTo(4.0 * 8 * 4 * 2 * pairs));
        Assert.That(OpWork.AttentionBackward(shape).Flops, Is.EqualTo(2.5 * OpWork.Attention(shape).Flops));
    }

    [Test]
    public void Llama_2_7B_GEMMs_are_compute_bound_and_its_norms_memory_bound()
    {
        const int tokens = 4096, dim = 4096, hidden = 11008;
        Assert.That(OpWork.Linear(tokens, dim, hidden).MemoryBound, Is.False);
        Assert.That(OpWork.LinearInputGrad(tokens, dim, hidden, accumulate: true).MemoryBound, Is.False);
        Assert.That(OpWork.Attention(new AttentionShape(8, 512, 512, 512, 0, 32, 32, 128)).MemoryBound, Is.False);
        Assert.That(OpWork.RmsNorm(tokens, dim).MemoryBound, Is.True);
        Assert.That(OpWork.SwiGluBackward((long)tokens * hidden).MemoryBound, Is.True);
        Assert.That(OpWork.Retraction(8, dim).MemoryBound, Is.True, "r / 2 FLOP per byte at rank 8");
    }
}
