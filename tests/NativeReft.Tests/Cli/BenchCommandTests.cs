using System.Text.Json;

namespace NativeReft.Tests.Cli;

public sealed class BenchCommandTests
{
    [TestCase("cpu")]
    [TestCase("emu")]
    public void Bench_train_times_steps_of_a_random_model_and_prints_a_json_result(string device)
    {
        var (code, output, error) = CliRunner.Run("bench", "train", "--shape", "stories260K", "--seq", "32", "--batch", "2",
            "--steps", "2", "--warmup", "1", "--rank", "4", "--positions", "f2+l2", "--device", device, "--json");
        Assert.That(code, Is.Zero, error);
        Assert.That(error, Does.Contain("bench train: stories260K").And.Contain("batch 2 x seq 32").And.Contain("loreft rank 4 at 5 layers"));
        Assert.That(output, Does.Contain("tokens/s").And.Contain("peak"));
        using var result = JsonDocument.Parse(output.TrimEnd().Split('\n')[^1]);
        var root = result.RootElement;
        Assert.That(root.GetProperty("engine").GetString(), Is.EqualTo("nativereft"));
        Assert.That(root.GetProperty("tokens_per_s").GetDouble(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("step_ms").GetDouble(), Is.GreaterThan(0));
        Assert.That(root.GetProperty("peak_gib").GetDouble(), Is.GreaterThan(0));
        if (device == "emu")
        {
            // The device-time breakdown covers the step's ops, forward and backward; the timed steps were one graph.
            Assert.That(output, Does.Contain("device time by op").And.Contain("attention backward").And.Contain("intervention backward").And.Contain("adamw"));
            // Each op's rate beside its time, against a copy bandwidth measured in the same run.
            Assert.That(output, Does.Match(@"device-to-device copy [0-9]+ GB/s").And.Contain("TFLOP/s").And.Contain("of copy"));
            Assert.That(output, Does.Match(@"memory-bound ops \(under 32 FLOP/byte\): [0-9.]+ ms moving [0-9.]+ GB, [0-9]+% of the copy bandwidth"));
            Assert.That(output, Does.Contain("step replayed as one CUDA graph"));
            Assert.That(output, Does.Match(@"peak device memory [0-9.]+ (MiB|GiB) in use, [0-9.]+ (MiB|GiB) held by the memory pool"));
            Assert.That(error, Does.Contain("the step runs as one captured graph"));
            Assert.That(root.GetProperty("graph").GetBoolean(), Is.True);
            Assert.That(root.GetProperty("peak_reserved_gib").GetDouble(), Is.GreaterThanOrEqualTo(root.GetProperty("peak_gib").GetDouble()),
                "the pool holds at least what is in use");
            Assert.That(error, Does.Match(@"one captured graph \([0-9,]+ launches, copies and fills"));
            Assert.That(root.GetProperty("copy_gb_s").GetDouble(), Is.GreaterThan(0));
            Assert.That(root.GetProperty("compute_tflops").GetDouble() + root.GetProperty("memory_gb_s").GetDouble(), Is.GreaterThan(0));
        }
    }

    [TestCase("off", "step queued op by op (no graph)")]
    [TestCase("on", "step replayed as one CUDA graph")]
    public void Bench_train_graph_picks_how_the_timed_steps_run(string graph, string line)
    {
        var (code, output, error) = CliRunner.Run("bench", "train", "--shape", "stories260K", "--seq", "16", "--batch", "1",
            "--steps", "2", "--warmup", "0", "--rank", "2", "--positions", "f1+l1", "--layers", "1", "--device", "emu", "--graph", graph);
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain(line));
    }

    [Test]
    public void Bench_train_on_the_emulator_runs_the_tensor_core_attention_at_head_size_64()
    {
        var (code, output, error) = CliRunner.Run("bench", "train", "--shape", "tiny-hs64", "--seq", "32", "--batch", "2",
            "--steps", "1", "--warmup", "0", "--rank", "4", "--positions", "f2+l2", "--device", "emu", "--attention", "tensor-core");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.Contain("attention (tensor cores)").And.Contain("attention backward (tensor cores)"));
    }

    [TestCase("tensor-core", "emu", "--attention tensor-core: head size 8")]
    [TestCase("direct", "cpu", "--attention and --graph on are about the CUDA backend")]
    [TestCase("fastest", "emu", "unknown --attention 'fastest'")]
    public void Attention_kernels_that_cannot_run_are_refused_before_timing(string attention, string device, string message)
    {
        var (code, _, error) = CliRunner.Run("bench", "train", "--shape", "stories260K", "--seq", "32", "--batch", "1",
            "--steps", "1", "--attention", attention, "--device", device);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(message));
    }

    [Test]
    public void An_unknown_shape_lists_the_known_ones()
    {
        var (code, _, error) = CliRunner.Run("bench", "train", "--shape", "llama9-1t", "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("unknown model shape 'llama9-1t'").And.Contain("llama2-7b"));
    }

    [Test]
    public void A_shape_too_large_for_this_machine_says_so_before_allocating()
    {
        var (code, _, error) = CliRunner.Run("bench", "train", "--shape", "llama3-8b", "--device", "cpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("llama3-8b weights alone take").And.Contain("--device cuda"));
    }
}
