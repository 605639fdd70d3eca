using NativeReft.Cuda;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// The emulator's own test kernels (cmake/test_kernels/emulator_tests.cu) with known answers: shared memory and
/// barriers, warp shuffles and votes, atomics, dynamic shared memory; a race the parity check catches; barrier
/// divergence and out-of-bounds writes reported with the kernel's name instead of hanging or corrupting memory.
/// </summary>
public sealed class EmulatorKernelTests
{
    // Block sums of 256 values in [-1, 1) accumulate in fp32 in a tree, the reference in float64.
    private static readonly Tolerance BlockSum = new(1e-5, 1e-5);

    private EmulatorRuntime runtime = null!;
    private KernelModule module = null!;
    private DeviceStream stream = null!;

    [OneTimeSetUp]
    public void Open()
    {
        runtime = Emulated.Runtime;
        module = runtime.LoadModule(Emulated.TestKernels);
        stream = runtime.CreateStream();
    }

    [OneTimeTearDown]
    public void Close()
    {
        stream?.Dispose();
        module?.Dispose();
    }

    [TestCase("emutest_block_sum", 64, 64 * 256)]
    [TestCase("emutest_block_sum", 3, 700)]
    [TestCase("emutest_block_reduce_sum", 64, 64 * 256)]
    [TestCase("emutest_block_reduce_sum", 5, 1201)]
    public void Block_reductions_through_shared_memory_and_barriers_are_exact(string kernel, int blocks, int n)
    {
        var x = Emulated.RandomFloats(n, n);
        var sums = RunBlockSum(kernel, x, blocks);
        BlockSum.AssertClose(sums, ExpectedBlockSums(x, blocks), kernel);
    }

    [Test]
    public void A_missing_barrier_gives_a_wrong_answer_that_the_parity_check_catches()
    {
        const int blocks = 8;
        var x = Emulated.RandomFloats(11, blocks * 256);
        var expected = ExpectedBlockSums(x, blocks);
        Assert.That(BlockSum.Compare(RunBlockSum("emutest_block_sum", x, blocks), expected, "with the barrier"), Is.Null);
        string? failure = BlockSum.Compare(RunBlockSum("emutest_block_sum_racy", x, blocks), expected, "without the barrier");
        Assert.That(failure, Does.StartWith("without the barrier: 8 of 8 elements outside"));
    }

    [Test]
    public void Warp_shuffles_and_votes_move_values_between_lanes()
    {
        const int warps = 6;
        var x = Emulated.RandomFloats(5, warps * 32).Select(v => v * 3).ToArray();
        using var xd = runtime.Upload<float>(x);
        using var sums = runtime.Allocate<float>(warps);
        using var xorSums = runtime.Allocate<float>(warps);
        using var scan = runtime.Allocate<float>(x.Length);
        using var broadcast = runtime.Allocate<float>(x.Length);
        using var votes = runtime.Allocate<uint>(warps * 3);
        runtime.Launch(module.GetFunction("emutest_warp_ops"), new LaunchConfig(2, 96), stream,
            sums.Pointer, xorSums.Pointer, scan.Pointer, broadcast.Pointer, votes.Pointer, xd.Pointer);

        var warpSums = Enumerable.Range(0, warps).Select(w => x.Skip(w * 32).Take(32).Sum(v => (double)v)).ToArray();
        var tolerance = new Tolerance(1e-5, 1e-5);
        tolerance.AssertClose(sums.ToArray(), warpSums, "__shfl_down_sync sum");
        tolerance.AssertClose(xorSums.ToArray(), warpSums, "__shfl_xor_sync sum");
        var prefix = x.Select((_, i) => x.Skip(i / 32 * 32).Take(i % 32 + 1).Sum(v => (double)v)).ToArray();
        tolerance.AssertClose(scan.ToArray(), prefix, "__shfl_up_sync inclusive scan");
        Assert.That(broadcast.ToArray(), Is.EqualTo(x.Select((_, i) => x[i / 32 * 32 + 5]).ToArray()), "__shfl_sync from lane 5");
        var expectedVotes = Enumerable.Range(0, warps).SelectMany(w =>
        {
            var lanes = x.Skip(w * 32).Take(32).ToArray();
            uint ballot = 0;
            for (int l = 0; l < 32; l++)
            {
                ballot |= lanes[l] > 0 ? 1u << l : 0;
            }
            return new[] { ballot, lanes.Any(v => v > 2) ? 1u : 0u, lanes.All(v => v > -2) ? 1u : 0u };
        }).ToArray();
        Assert.That(votes.ToArray(), Is.EqualTo(expectedVotes), "__ballot_sync, __any_sync, __all_sync");
    }

    [Test]
    public void An_atomic_histogram_counts_every_value()
    {
        var rng = new Random(3);
        var values = Enumerable.Range(0, 100_003).Select(_ => rng.Next(64)).ToArray();
        using var vd = runtime.Upload<int>(values);
        using var bins = runtime.Upload<uint>(new uint[64]);
        runtime.Launch(module.GetFunction("emutest_histogram"), new LaunchConfig(37, 128), stream, bins.Pointer, vd.Pointer, (long)values.Length);
        var expected = new uint[64];
        foreach (int v in values)
        {
            expected[v]++;
        }
        Assert.That(bins.ToArray(), Is.EqualTo(expected));
    }

    [Test]
    public void Float_atomic_add_and_atomic_max_combine_every_thread()
    {
        var x = Emulated.RandomFloats(9, 5000).Select(v => MathF.Round(v * 64)).ToArray(); // integers: any order sums exactly
        var integers = x.Select((v, i) => (int)v * 7 + i % 13).ToArray();
        using var xd = runtime.Upload<float>(x);
        using var id = runtime.Upload<int>(integers);
        using var total = runtime.Upload<float>([0f]);
        using var maximum = runtime.Upload<int>([int.MinValue]);
        runtime.Launch(module.GetFunction("emutest_atomic_sum_max"), new LaunchConfig(8, 64), stream, total.Pointer, maximum.Pointer, xd.Pointer, id.Pointer, (long)x.Length);
        Assert.That(total.ToArray()[0], Is.EqualTo(x.Sum()));
        Assert.That(maximum.ToArray()[0], Is.EqualTo(integers.Max()));
    }

    [Test]
    public void Dynamic_shared_memory_is_per_block()
    {
        const int block = 96;
        var x = Emulated.RandomFloats(4, block * 7);
        using var xd = runtime.Upload<float>(x);
        using var output = runtime.Allocate<float>(x.Length);
        runtime.Launch(module.GetFunction("emutest_reverse_blocks"), new LaunchConfig(7, block, block * sizeof(float)), stream, output.Pointer, xd.Pointer);
        Assert.That(output.ToArray(), Is.EqualTo(x.Select((_, i) => x[i / block * block + block - 1 - i % block]).ToArray()));
    }

    [Test]
    public void A_thread_that_exits_while_others_wait_at_a_barrier_is_an_error_naming_the_kernel()
    {
        using var output = runtime.Allocate<float>(64);
        var error = Assert.Throws<EmulatedKernelException>(() =>
            runtime.Launch(module.GetFunction("emutest_exit_before_barrier"), new LaunchConfig(2, 64), stream, output.Pointer));
        Assert.That(error!.Kernel, Is.EqualTo("emutest_exit_before_barrier"));
        Assert.That(error.Message, Does.Contain("kernel emutest_exit_before_barrier (emulator_tests.cu)")
            .And.Contain("Threads 0-15 wait at __syncthreads()").And.Contain("Threads 16-63 have exited"));
    }

    [Test]
    public void Threads_waiting_at_different_barriers_are_an_error_naming_the_kernel()
    {
        using var output = runtime.Allocate<float>(64);
        var error = Assert.Throws<EmulatedKernelException>(() =>
            runtime.Launch(module.GetFunction("emutest_split_barriers"), new LaunchConfig(1, 64), stream, output.Pointer));
        Assert.That(error!.Message, Does.Contain("kernel emutest_split_barriers").And.Contain("barrier divergence"));
        // The runtime is still usable afterwards.
        var x = Emulated.RandomFloats(1, 256);
        BlockSum.AssertClose(RunBlockSum("emutest_block_sum", x, 1), ExpectedBlockSums(x, 1), "after the error");
    }

    [Test]
    public void Check_mode_reports_an_out_of_bounds_write_with_the_kernel_and_thread()
    {
        using var checkedRuntime = Emulated.OpenChecked();
        var kernels = checkedRuntime.LoadModule(Emulated.TestKernels);
        var write = kernels.GetFunction("emutest_write_one_past");
        using var output = checkedRuntime.Allocate<float>(100);
        var error = Assert.Throws<EmulatedKernelException>(() =>
            checkedRuntime.Launch(write, new LaunchConfig(1, 128), checkedRuntime.DefaultStream, output.Pointer, 100));
        Assert.That(error!.Message, Does.Contain("kernel emutest_write_one_past (emulator_tests.cu), block (0, 0, 0), thread (100, 0, 0)")
            .And.Contain("0 bytes past the end of the 400-byte buffer"));
        // In bounds, the same kernel runs.
        checkedRuntime.Launch(write, new LaunchConfig(1, 128), checkedRuntime.DefaultStream, output.Pointer, 99);
        Assert.That(output.ToArray(), Is.All.EqualTo(1f));
    }

    [Test]
    public void A_misaligned_128_bit_access_is_an_error_naming_the_kernel_and_thread()
    {
        // A GPU stops the kernel ("misaligned address") where x86 would read on; the emulator reports it.
        var copy = module.GetFunction("emutest_pack_copy");
        using var x = runtime.Upload<float>([1, 2, 3, 4, 5, 6, 7, 8]);
        using var output = runtime.Allocate<float>(4);
        var error = Assert.Throws<EmulatedKernelException>(() => runtime.Launch(copy, new LaunchConfig(1, 1), stream, output.Pointer, x.Pointer, 1));
        Assert.That(error!.Message, Does.Contain("kernel emutest_pack_copy (emulator_tests.cu), block (0, 0, 0), thread (0, 0, 0)")
            .And.Contain("a Pack load at").And.Contain("is not 16-byte aligned (a GPU stops the kernel: misaligned address)"));
        // Aligned, the same kernel runs.
        runtime.Launch(copy, new LaunchConfig(1, 1), stream, output.Pointer, x.Pointer, 4);
        Assert.That(output.ToArray(), Is.EqualTo(new float[] { 5, 6, 7, 8 }));
    }

    [Test]
    public void A_captured_graph_replays_its_launches_and_copies()
    {
        var x = Emulated.RandomFloats(2, 512);
        using var xd = runtime.Upload<float>(x);
        using var sums = runtime.Allocate<float>(2);
        using var host = runtime.AllocatePinned<float>(2);
        using var graphStream = runtime.CreateStream();
        host.Span.Clear();
        int n = x.Length;
        using var graph = runtime.Capture(graphStream, () =>
        {
            runtime.Launch(module.GetFunction("emutest_block_sum"), new LaunchConfig(2, 256), graphStream, sums.Pointer, xd.Pointer, n);
            host.CopyFromDeviceAsync(runtime, sums, graphStream);
        });
        Assert.That(host.Span.ToArray(), Is.All.EqualTo(0f), "capturing does not run the work");
        Assert.That(graph.Nodes, Is.EqualTo(2), "the launch and the copy");
        n = 0; // the launch's arguments were copied when it was captured
        graph.Launch(graphStream);
        BlockSum.AssertClose(host.Span, ExpectedBlockSums(x, 2), "replayed");
    }

    private float[] RunBlockSum(string kernel, float[] x, int blocks)
    {
        using var xd = runtime.Upload<float>(x);
        using var output = runtime.Allocate<float>(blocks);
        runtime.Launch(module.GetFunction(kernel), new LaunchConfig((uint)blocks, 256), stream, output.Pointer, xd.Pointer, x.Length);
        return output.ToArray();
    }

    private static double[] ExpectedBlockSums(float[] x, int blocks) =>
        Enumerable.Range(0, blocks).Select(b => x.Skip(b * 256).Take(256).Sum(v => (double)v)).ToArray();
}
