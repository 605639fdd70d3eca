using NativeReft.Backends;
using NativeReft.Backends.Cpu;
using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;
using static NativeReft.Tests.Cuda.KernelParity;

namespace NativeReft.Tests.Cuda;

/// <summary>
/// kernels/attention.cu against CpuBackend&lt;float&gt;'s Attention and AttentionBackward on the same bf16 inputs:
/// MHA, GQA and MQA, batches with left and right key padding (fully masked query rows included), KV-cache calls
/// (KeyStride &gt; KeyLength, QueryOffset &gt; 0, one-token decode), head sizes 8, 14, 64, 128 and a 257-key sequence;
/// the direct kernels (attention.cu) and the tensor-core kernels (flash_attention.cu: head sizes 64 and 128, tails
/// of the 64-row tiles, caches longer than a tile); one suite, made concrete per runtime (AttentionKernelGpuTests,
/// AttentionKernelEmulatorTests, and the checked emulator).
/// </summary>
public abstract class AttentionKernelSuite : KernelSuite<AttentionKernels>
{
    // Tolerances, with their reasons.
    // out, dQ, dK, dV are fp32 sums rounded once to bf16: half an ulp (2^-9 of the value) off the fp32 reference,
    // and rtol 2^-8 leaves room for the fp32 differences that can move a value across a rounding boundary: the
    // online softmax's rescaling, the dot products' and the sums' order (the CPU's are SIMD), expf. atol covers
    // values near zero that come from cancellation (an average of v rows of both signs, dS = p (dP - D) summed
    // over keys): fp32 error of terms ~1 (|q|, |k| <= 2, |v|, |dO| <= 1, hs <= 128 products per dot).
    private static readonly Tolerance Output = new(1e-5, 1.0 / 256);
    private static readonly Tolerance Gradient = new(2e-5, 1.0 / 256);

    // The log-sum-exp stays fp32: max + log(sum) of up to a few hundred exp terms, each score a dot of hs fp32
    // products in another order (error ~ sqrt(hs) ulps of |score| <= 10).
    private static readonly Tolerance LogSumExp = new(2e-6, 1e-6);

    // The tensor-core path rounds p (forward) and dS (backward) to bf16 before multiplying, as FlashAttention does
    // (and as HF's bf16 attention does, whose softmax output is bf16): each term of out_i = sum_j p_ij v_j moves by
    // up to 2^-9 p_ij |v_j|, so out by up to 2^-9 max|v| = 2e-3 (|v| <= 1, sum_j p_ij = 1), whatever its value (a
    // cancelling sum can be small): atol 2e-3. dq = scale sum_j dS_ij k_j and dk = scale sum_i dS_ij q_i likewise,
    // with |dS| small and scale <= 1/8: atol 4e-3. dv_j = sum_(h,i) p_ij dO_i sums over every query of the group
    // that sees key j, so its weight sum p_ij grows with the sequence (about group * ln(Tq) for the first keys):
    // atol 2^-9 times the case's largest such weight (|dO| <= 1), the worst case of the rounding. The relative part
    // stays the final bf16 rounding's.
    private static readonly Tolerance TensorCoreOutput = new(2e-3, 1.0 / 256);
    private static readonly Tolerance TensorCoreGradient = new(4e-3, 1.0 / 256);

    // The scores are fp32 sums of exact bf16 products in the tensor core's order (and, on a GPU, its accumulation).
    private static readonly Tolerance TensorCoreLogSumExp = new(2e-5, 2e-6);

    private static readonly BFloat16 NaN = BFloat16.FromFloat(float.NaN);

    private AttentionKernels? tensorCoreKernels;

    // Key masks: per sequence, how many keys of [0, KeyLength) are masked at the start (left padding) and at the
    // end (right padding). null: no mask.
    private static readonly (int Left, int Right)[]? NoMask = null;

    private static IEnumerable<TestCaseData> Cases() => DirectCases().Concat(TensorCoreCases());

    private static IEnumerable<TestCaseData> DirectCases()
    {
        // MHA, one tiny sequence, no mask.
        yield return Case("mha hs8", new AttentionShape(1, 7, 7, 7, 0, 2, 2, 8), NoMask);
        // GQA (3 query heads per KV head), odd head size; sequence 0 right-padded, sequence 1 left-padded by 4:
        // its queries 0..3 see only masked keys (zero output, zero gradients).
        yield return Case("gqa hs14 padded", new AttentionShape(2, 13, 13, 13, 0, 6, 2, 14), [(0, 3), (4, 0)]);
        // KV cache, chunked prefill: 5 new queries at positions 15..19 over 20 keys in a cache of 24; MQA; padding.
        yield return Case("cache prefill mqa hs64", new AttentionShape(2, 5, 20, 24, 15, 4, 1, 64), [(2, 0), (0, 0)]);
        // KV cache without a mask: 3 queries at positions 6..8 over 9 keys in a cache of 16 (NaN past key 8).
        yield return Case("cache mha hs8", new AttentionShape(1, 3, 9, 16, 6, 4, 4, 8), NoMask);
        // KV cache, one-token decode: query at position 32 over 33 keys in a cache of 40, three sequences.
        yield return Case("decode gqa hs128", new AttentionShape(3, 1, 33, 40, 32, 8, 2, 128), [(0, 0), (5, 0), (1, 2)]);
        // MHA, head size 128, right padding.
        yield return Case("mha hs128 padded", new AttentionShape(2, 40, 40, 40, 0, 2, 2, 128), [(0, 9), (0, 0)]);
        // A longer sequence: 257 keys (8 chunks of 32 and a tail), 40 of them masked at the start (whole chunks).
        yield return Case("long gqa hs64", new AttentionShape(1, 257, 257, 257, 0, 2, 1, 64), [(40, 0)]);
    }

    private static IEnumerable<TestCaseData> TensorCoreCases()
    {
        const AttentionPath tc = AttentionPath.TensorCore;
        // 64 queries and keys: one key tile, half a 128-row block; no mask.
        yield return Case("tc mha hs64 one tile", new AttentionShape(2, 64, 64, 64, 0, 2, 2, 64), NoMask, tc);
        // Head size 128, 40 queries (a partial tile: warps 4 to 8 have no rows), right padding.
        yield return Case("tc mha hs128 padded", new AttentionShape(2, 40, 40, 40, 0, 2, 2, 128), [(0, 9), (0, 0)], tc);
        // GQA 4:1, 100 queries (a full and a partial tile), no mask.
        yield return Case("tc gqa hs128 tails", new AttentionShape(1, 100, 100, 100, 0, 8, 2, 128), NoMask, tc);
        // 257 queries and keys (five tiles), the first 40 keys masked: queries 0..39 see nothing.
        yield return Case("tc long gqa hs64", new AttentionShape(1, 257, 257, 257, 0, 2, 1, 64), [(40, 0)], tc);
        // KV cache prefill: 20 queries at positions 30..49 over 50 keys of a 72-row cache (two key blocks, NaN past
        // key 49), GQA, padding on both sides.
        yield return Case("tc cache prefill gqa hs64", new AttentionShape(2, 20, 50, 72, 30, 4, 2, 64), [(3, 0), (0, 5)], tc);
        // MQA, 33 keys in a 40-row cache.
        yield return Case("tc mqa hs64 cache", new AttentionShape(1, 33, 33, 40, 0, 4, 1, 64), NoMask, tc);
        // Chunked prefill late in a cache: 20 queries at positions 130..149 over 150 keys of a 160-row cache (two
        // 128-row key blocks, the second mostly unused), left padding.
        yield return Case("tc late prefill gqa hs64", new AttentionShape(1, 20, 150, 160, 130, 4, 2, 64), [(5, 0)], tc);
        // Two sequences of 130 (a full 128-row block and two rows), head size 128, padding on both.
        yield return Case("tc two blocks hs128 padded", new AttentionShape(2, 130, 130, 130, 0, 2, 2, 128), [(0, 17), (3, 0)], tc);
    }

    private static TestCaseData Case(string name, AttentionShape shape, (int Left, int Right)[]? padding,
        AttentionPath path = AttentionPath.Direct) =>
        new TestCaseData(path, shape, padding).SetArgDisplayNames(name);

    private protected override AttentionKernels CreateKernels(IDeviceRuntime device) => new(device, AttentionPath.Direct);

    [OneTimeTearDown]
    public void UnloadTensorCoreKernels() => tensorCoreKernels?.Dispose();

    // The launcher for a path: the fixture's (direct only), or one that runs the tensor-core kernels or throws.
    private AttentionKernels KernelsFor(AttentionPath path)
    {
        if (path == AttentionPath.Direct)
        {
            return Kernels;
        }
        if (!AttentionKernels.TensorCoresAvailable(Device))
        {
            Assert.Ignore($"{Device.Properties.Name} is {Device.Properties.Architecture}: the tensor-core attention needs sm_80 or later");
        }
        return tensorCoreKernels ??= new AttentionKernels(Device, AttentionPath.TensorCore);
    }

    [TestCaseSource(nameof(Cases))]
    public void Forward_matches_the_cpu_backend(AttentionPath path, AttentionShape shape, (int Left, int Right)[]? padding)
    {
        var kernels = KernelsFor(path);
        bool tensorCores = path == AttentionPath.TensorCore;
        var inputs = new Inputs(shape, padding);
        using var qd = Device.Upload<BFloat16>(inputs.Q);
        using var kd = Device.Upload<BFloat16>(inputs.K);
        using var vd = Device.Upload<BFloat16>(inputs.V);
        using var maskd = inputs.Mask is null ? null : Device.Upload<byte>(inputs.Mask);
        using var output = Device.Allocate<BFloat16>(inputs.Q.Length);
        using var lse = Device.Allocate<float>((long)shape.Batch * shape.QueryLength * shape.Heads);
        Poison(output);
        kernels.Forward(qd, kd, vd, maskd?.View ?? default, shape, output, lse, Stream);
        Stream.Synchronize();

        var got = Floats(output);
        (tensorCores ? TensorCoreOutput : Output).AssertClose(got, inputs.CpuForward(), "attention out");
        var (gotLse, expectedLse) = (lse.ToArray(), inputs.ReferenceLogSumExp());
        Assert.That(gotLse.Select(float.IsNegativeInfinity), Is.EqualTo(expectedLse.Select(double.IsNegativeInfinity)), "lse = -inf exactly where a query sees no key");
        (tensorCores ? TensorCoreLogSumExp : LogSumExp).AssertClose(gotLse.Where(float.IsFinite).ToArray(), expectedLse.Where(double.IsFinite).ToArray(), "attention lse");
        foreach (var (b, i) in inputs.BlindQueries())
        {
            Assert.That(inputs.QueryRow(got, b, i), Is.All.EqualTo(0f), $"sequence {b} query {i} sees no key: zeros");
        }

        // Without the optional log-sum-exp, the same output.
        using var output2 = Device.Allocate<BFloat16>(inputs.Q.Length);
        kernels.Forward(qd, kd, vd, maskd?.View ?? default, shape, output2, Stream);
        Stream.Synchronize();
        Assert.That(output2.ToArray().Select(x => x.Bits), Is.EqualTo(output.ToArray().Select(x => x.Bits)));
    }

    [TestCaseSource(nameof(Cases))]
    public void Backward_matches_the_cpu_backend_and_is_deterministic(AttentionPath path, AttentionShape shape, (int Left, int Right)[]? padding) =>
        AssertBackward(path, shape, padding, fromSaved: false);

    // After a forward that kept its log-sum-exp in the statistics buffer (what CudaBackend.AttentionForBackward
    // does): the tensor-core dq kernel takes D = dO . out instead of its pass over the keys; the direct kernels
    // recompute as ever. The same gradients within the same tolerances.
    [TestCaseSource(nameof(Cases))]
    public void Backward_from_the_forward_s_saved_statistics_matches_the_cpu_backend(AttentionPath path, AttentionShape shape,
        (int Left, int Right)[]? padding) =>
        AssertBackward(path, shape, padding, fromSaved: true);

    private void AssertBackward(AttentionPath path, AttentionShape shape, (int Left, int Right)[]? padding, bool fromSaved)
    {
        var kernels = KernelsFor(path);
        var gradient = path == AttentionPath.TensorCore ? TensorCoreGradient : Gradient;
        var inputs = new Inputs(shape, padding);
        using var qd = Device.Upload<BFloat16>(inputs.Q);
        using var kd = Device.Upload<BFloat16>(inputs.K);
        using var vd = Device.Upload<BFloat16>(inputs.V);
        using var dOutd = Device.Upload<BFloat16>(inputs.DOut);
        using var maskd = inputs.Mask is null ? null : Device.Upload<byte>(inputs.Mask);
        using var output = Device.Allocate<BFloat16>(inputs.Q.Length);
        using var dQ = Device.Allocate<BFloat16>(inputs.Q.Length);
        using var dK = Device.Allocate<BFloat16>(inputs.K.Length);
        using var dV = Device.Allocate<BFloat16>(inputs.V.Length);
        using var scratch = Device.Allocate<float>(AttentionKernels.BackwardScratchLength(shape));
        void Run()
        {
            Poison(dQ);
            Poison(dK);
            Poison(dV);
            if (fromSaved)
            {
                long rows = (long)shape.Batch * shape.QueryLength * shape.Heads;
                Device.Fill8(scratch.Pointer, 0xff, scratch.SizeInBytes, null); // the D half must be written
                kernels.Forward(qd, kd, vd, maskd?.View ?? default, shape, output, scratch.View.Slice(0, rows), Stream);
                kernels.BackwardFromSaved(qd, kd, vd, maskd?.View ?? default, shape, output, dOutd, dQ, dK, dV, scratch, Stream);
            }
            else
            {
                kernels.Backward(qd, kd, vd, maskd?.View ?? default, shape, dOutd, dQ, dK, dV, scratch, Stream);
            }
            Stream.Synchronize();
        }

        Run();
        var (expectedQ, expectedK, expectedV) = inputs.CpuBackward();
        var gotQ = Floats(dQ);
        gradient.AssertClose(gotQ, expectedQ, "attention dQ");
        gradient.AssertClose(Floats(dK), expectedK, "attention dK");
        var valueGradient = path == AttentionPath.TensorCore ? new Tolerance(Math.Max(4e-3, inputs.MaxKeyProbabilityMass() / 512), 1.0 / 256) : Gradient;
        valueGradient.AssertClose(Floats(dV), expectedV, "attention dV");
        foreach (var (b, i) in inputs.BlindQueries())
        {
            Assert.That(inputs.QueryRow(gotQ, b, i), Is.All.EqualTo(0f), $"sequence {b} query {i} sees no key: zero dQ");
        }

        // A second run, into poisoned buffers again: the same bits (fixed summation order, no atomics).
        var first = (dQ.ToArray(), dK.ToArray(), dV.ToArray());
        Run();
        Assert.That(dQ.ToArray().Select(x => x.Bits), Is.EqualTo(first.Item1.Select(x => x.Bits)), "dQ, second run");
        Assert.That(dK.ToArray().Select(x => x.Bits), Is.EqualTo(first.Item2.Select(x => x.Bits)), "dK, second run");
        Assert.That(dV.ToArray().Select(x => x.Bits), Is.EqualTo(first.Item3.Select(x => x.Bits)), "dV, second run");
    }

    [Test]
    public void The_scratch_holds_the_log_sum_exp_and_D_of_every_query_row_and_head() =>
        Assert.That(AttentionKernels.BackwardScratchLength(new AttentionShape(3, 5, 20, 24, 15, 4, 2, 8)), Is.EqualTo(2 * 3 * 5 * 4));

    [Test]
    public void Shapes_are_checked_before_launching()
    {
        var shape = new AttentionShape(2, 3, 5, 6, 2, 4, 2, 8);
        using var q = Device.Allocate<BFloat16>(2 * 3 * 4 * 8);
        using var k = Device.Allocate<BFloat16>(2 * 6 * 2 * 8);
        using var mask = Device.Allocate<byte>(2 * 6);
        using var scratch = Device.Allocate<float>(AttentionKernels.BackwardScratchLength(shape));
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask, shape with { Heads = 3 }, q, Stream), "heads not a multiple of KV heads");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask, shape with { QueryOffset = 3 }, q, Stream), "queries past the keys");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask, shape with { KeyStride = 4 }, q, Stream), "stride below the key length");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q.View.Slice(1), k, k, mask, shape, q, Stream), "q");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k.View.Slice(8), mask, shape, q, Stream), "v");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask.View.Slice(1), shape, q, Stream), "mask");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask, shape, q.View.Slice(1), Stream), "output");
        Assert.Throws<ArgumentException>(() => Kernels.Forward(q, k, k, mask, shape, q, scratch.View.Slice(1), Stream), "lse");
        Assert.Throws<ArgumentException>(() => Kernels.Backward(q, k, k, mask, shape, q, q, k, k, scratch.View.Slice(1), Stream), "scratch");
        Assert.Throws<ArgumentException>(() => Kernels.Backward(q, k, k, mask, shape, q, q, k.View.Slice(1), k, scratch, Stream), "dK");
        Assert.Throws<ArgumentException>(() => Kernels.Backward(q, k, k, mask, shape, q.View.Slice(1), q, k, k, scratch, Stream), "dOut");

        // A head too wide for a warp's slice of shared memory: the message names the limit.
        var wide = new AttentionShape(1, 1, 1, 1, 0, 1, 1, 8192);
        using var wq = Device.Allocate<BFloat16>(8192);
        var error = Assert.Throws<ArgumentException>(() => Kernels.Forward(wq, wq, wq, default, wide, wq, Stream));
        Assert.That(error!.Message, Does.Contain(AttentionKernels.SharedMemoryLimitBytes.ToString(System.Globalization.CultureInfo.InvariantCulture)));
    }

    [Test]
    public void Auto_runs_the_tensor_cores_where_they_apply_and_the_direct_kernels_elsewhere()
    {
        var tensorCores = KernelsFor(AttentionPath.TensorCore);
        using var auto = new AttentionKernels(Device);
        var prefill = new AttentionShape(1, 40, 40, 40, 0, 2, 1, 64);
        var decode = new AttentionShape(1, 1, 40, 40, 39, 2, 1, 64);
        Assert.That(auto.TensorCoreProblem(prefill), Is.Null);
        Assert.That(auto.TensorCoreProblem(decode), Does.Contain("1 queries"));
        Assert.That(auto.TensorCoreProblem(prefill with { HeadSize = 8 }), Does.Contain("head size 8"));

        // Auto gives the tensor-core kernels' bits on the prefill, the direct kernel's on the decode step.
        Assert.That(ForwardBits(auto, prefill), Is.EqualTo(ForwardBits(tensorCores, prefill)), "prefill: tensor cores");
        Assert.That(ForwardBits(auto, decode), Is.EqualTo(ForwardBits(Kernels, decode)), "decode: direct");

        // Forced on a call it cannot take: an error that says why.
        var error = Assert.Throws<ArgumentException>(() => ForwardBits(tensorCores, decode));
        Assert.That(error!.Message, Does.Contain("tensor-core path").And.Contain("1 queries"));
    }

    private ushort[] ForwardBits(AttentionKernels kernels, AttentionShape shape)
    {
        var inputs = new Inputs(shape, NoMask);
        using var qd = Device.Upload<BFloat16>(inputs.Q);
        using var kd = Device.Upload<BFloat16>(inputs.K);
        using var vd = Device.Upload<BFloat16>(inputs.V);
        using var output = Device.Allocate<BFloat16>(inputs.Q.Length);
        kernels.Forward(qd, kd, vd, default, shape, output, Stream);
        Stream.Synchronize();
        return output.ToArray().Select(x => x.Bits).ToArray();
    }

    // Every element the kernel must write starts as NaN (bf16 0xffff).
    private void Poison(DeviceBuffer<BFloat16> buffer) => Device.Fill8(buffer.Pointer, 0xff, buffer.SizeInBytes, null);

    /// <summary>Seeded inputs for one case, and the CPU reference on them.</summary>
    private sealed class Inputs
    {
        private readonly AttentionShape shape;

        public Inputs(AttentionShape shape, (int Left, int Right)[]? padding)
        {
            this.shape = shape;
            int seed = shape.Batch * 1000 + shape.QueryLength * 31 + shape.KeyStride * 7 + shape.Heads + shape.HeadSize;
            long qLength = (long)shape.Batch * shape.QueryLength * shape.Heads * shape.HeadSize;
            long kLength = (long)shape.Batch * shape.KeyStride * shape.KvHeads * shape.HeadSize;
            Q = RandomBFloat16(seed, qLength, 2f);
            K = RandomBFloat16(seed + 1, kLength, 2f);
            V = RandomBFloat16(seed + 2, kLength);
            DOut = RandomBFloat16(seed + 3, qLength);
            // The cache's unused rows [KeyLength, KeyStride) hold NaN: they must never be read (pool memory is
            // uninitialized in a real cache).
            int width = shape.KvHeads * shape.HeadSize;
            for (int b = 0; b < shape.Batch; b++)
            {
                for (int j = shape.KeyLength; j < shape.KeyStride; j++)
                {
                    Array.Fill(K, NaN, (b * shape.KeyStride + j) * width, width);
                    Array.Fill(V, NaN, (b * shape.KeyStride + j) * width, width);
                }
            }
            if (padding is not null)
            {
                Mask = new byte[shape.Batch * shape.KeyStride];
                for (int b = 0; b < shape.Batch; b++)
                {
                    for (int j = 0; j < shape.KeyStride; j++)
                    {
                        bool visible = j >= padding[b].Left && j < shape.KeyLength - padding[b].Right;
                        // Unused cache rows get a random byte: whatever it says, they are never visible.
                        Mask[b * shape.KeyStride + j] = (byte)(j >= shape.KeyLength ? (j * 37 + 1) & 0xff : visible ? 1 + j % 3 : 0);
                    }
                }
            }
        }

        public BFloat16[] Q { get; }
        public BFloat16[] K { get; }
        public BFloat16[] V { get; }
        public BFloat16[] DOut { get; }
        public byte[]? Mask { get; }

        private bool[] BoolMask => Mask is null ? [] : Mask.Select(m => m != 0).ToArray();

        private bool Visible(int b, int j) => Mask is null || Mask[b * shape.KeyStride + j] != 0;

        /// <summary>The (sequence, query) pairs whose causal window holds only masked keys.</summary>
        public IEnumerable<(int B, int I)> BlindQueries()
        {
            for (int b = 0; b < shape.Batch; b++)
            {
                for (int i = 0; i < shape.QueryLength; i++)
                {
                    if (!Enumerable.Range(0, shape.QueryOffset + i + 1).Any(j => Visible(b, j)))
                    {
                        yield return (b, i);
                    }
                }
            }
        }

        public float[] QueryRow(float[] values, int b, int i)
        {
            int width = shape.Heads * shape.HeadSize;
            return values.AsSpan((b * shape.QueryLength + i) * width, width).ToArray();
        }

        public double[] CpuForward()
        {
            using var cpu = new CpuBackend<float>(threads: 1);
            var (q, k, v) = Upload(cpu);
            using var output = cpu.Zeros(q.Rows, q.Columns);
            cpu.Attention(q, k, v, output, shape, BoolMask);
            return Download(cpu, output);
        }

        public (double[] DQ, double[] DK, double[] DV) CpuBackward()
        {
            using var cpu = new CpuBackend<float>(threads: 1);
            var (q, k, v) = Upload(cpu);
            using var dOut = cpu.Upload(Floats(DOut), q.Rows, q.Columns);
            using var dQ = cpu.Zeros(q.Rows, q.Columns);
            using var dK = cpu.Zeros(k.Rows, k.Columns);
            using var dV = cpu.Zeros(v.Rows, v.Columns);
            cpu.AttentionBackward(q, k, v, dOut, dQ, dK, dV, shape, BoolMask);
            return (Download(cpu, dQ), Download(cpu, dK), Download(cpu, dV));
        }

        /// <summary>log sum_j exp(scale q.k_j) over the visible keys, in float64; -inf where none.</summary>
        public double[] ReferenceLogSumExp()
        {
            var lse = new double[shape.Batch * shape.QueryLength * shape.Heads];
            ForEachQuery((b, i, h, scores) => lse[(b * shape.QueryLength + i) * shape.Heads + h] = LogSumExp(scores));
            return lse;
        }

        /// <summary>
        /// The largest sum of softmax probabilities any one key gets, over the query heads of its group and the
        /// queries that see it (float64): the weight of dV_j = sum p_ij dO_i, which bounds how far rounding each p
        /// to bf16 can move it.
        /// </summary>
        public double MaxKeyProbabilityMass()
        {
            var mass = new double[shape.Batch * shape.KeyStride * shape.KvHeads];
            int group = shape.Heads / shape.KvHeads;
            ForEachQuery((b, i, h, scores) =>
            {
                double lse = LogSumExp(scores);
                foreach (var (j, score) in scores)
                {
                    mass[(b * shape.KeyStride + j) * shape.KvHeads + h / group] += Math.Exp(score - lse);
                }
            });
            return mass.Max();
        }

        private static double LogSumExp(List<(int Key, double Score)> scores)
        {
            if (scores.Count == 0)
            {
                return double.NegativeInfinity;
            }
            double max = scores.Max(s => s.Score);
            return max + Math.Log(scores.Sum(s => Math.Exp(s.Score - max)));
        }

        // Calls visit(b, i, h, the (key, scaled score) pairs query i of sequence b sees at head h), in float64.
        private void ForEachQuery(Action<int, int, int, List<(int Key, double Score)>> visit)
        {
            int hs = shape.HeadSize, group = shape.Heads / shape.KvHeads;
            double scale = 1 / Math.Sqrt(hs);
            for (int b = 0; b < shape.Batch; b++)
            {
                for (int i = 0; i < shape.QueryLength; i++)
                {
                    for (int h = 0; h < shape.Heads; h++)
                    {
                        var scores = new List<(int Key, double Score)>();
                        for (int j = 0; j <= shape.QueryOffset + i; j++)
                        {
                            if (!Visible(b, j))
                            {
                                continue;
                            }
                            double dot = 0;
                            for (int d = 0; d < hs; d++)
                            {
                                dot += (double)Q[((b * shape.QueryLength + i) * shape.Heads + h) * hs + d].ToFloat()
                                    * K[((b * shape.KeyStride + j) * shape.KvHeads + h / group) * hs + d].ToFloat();
                            }
                            scores.Add((j, dot * scale));
                        }
                        visit(b, i, h, scores);
                    }
                }
            }
        }

        private (Tensor Q, Tensor K, Tensor V) Upload(CpuBackend<float> cpu)
        {
            int qWidth = shape.Heads * shape.HeadSize, kvWidth = shape.KvHeads * shape.HeadSize;
            return (cpu.Upload(Floats(Q), shape.Batch * shape.QueryLength, qWidth),
                cpu.Upload(Floats(K), shape.Batch * shape.KeyStride, kvWidth),
                cpu.Upload(Floats(V), shape.Batch * shape.KeyStride, kvWidth));
        }

        private static double[] Download(CpuBackend<float> cpu, Tensor tensor)
        {
            var values = new float[tensor.Rows * tensor.Columns];
            cpu.Download(tensor, values);
            return Doubles(values);
        }
    }
}
