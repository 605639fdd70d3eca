using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Cli.Commands;

/// <summary>
/// <c>nativereft bench train</c>: the training step of a model shape with random weights (no download), timed:
/// tokens/s, a device-time breakdown by op, peak memory and MFU against 4 N FLOPs per token (frozen weights:
/// forward plus the activation-gradient backward). The workload is <see cref="SyntheticBatch"/>, the same as
/// bench/peers' PyTorch runs.
/// </summary>
internal static class BenchCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var shape = new Option<string>("--shape") { Description = $"Model shape: {string.Join(", ", ModelShapes.All.Keys)}.", DefaultValueFactory = _ => "llama2-7b" };
        var seq = new Option<int>("--seq") { Description = "Tokens per sequence (the first half prompt, the second half labelled response).", DefaultValueFactory = _ => 512 };
        var batch = new Option<int>("--batch") { Description = "Sequences per step.", DefaultValueFactory = _ => 8 };
        var type = new Option<string>("--type") { Description = $"Intervention: {InterventionTypes.AllNames}.", DefaultValueFactory = _ => "loreft" };
        var rank = new Option<int>("--rank") { Description = "Intervention rank.", DefaultValueFactory = _ => 8 };
        var layers = new Option<string>("--layers") { Description = "Intervened layers: 'all' or e.g. \"2;10;18\".", DefaultValueFactory = _ => "all" };
        var positions = new Option<string>("--positions") { Description = "Prompt positions, e.g. f7+l7.", DefaultValueFactory = _ => "f7+l7" };
        var steps = new Option<int>("--steps") { Description = "Timed steps.", DefaultValueFactory = _ => 10 };
        var warmup = new Option<int>("--warmup") { Description = "Untimed steps first (kernel loading, the memory pool filling up).", DefaultValueFactory = _ => 2 };
        var peak = new Option<double>("--peak-tflops") { Description = "The device's dense bf16 peak for MFU (default: known for H100/H200/A100).", DefaultValueFactory = _ => 0 };
        var json = new Option<bool>("--json") { Description = "Also print the result as one JSON line, last." };
        var device = new Option<string>("--device") { Description = $"Where to run: {ComputeDevices.Names} (default: cuda when a GPU is usable, else cpu).", DefaultValueFactory = _ => "auto" };
        var threads = new Option<int>("--threads") { Description = "CPU threads for --device cpu (default: all cores).", DefaultValueFactory = _ => 0 };
        var attention = new Option<string>("--attention")
        {
            Description = "Attention kernels on cuda|emu: auto (tensor cores for head size 64 or 128 on sm_80+), direct, tensor-core.",
            DefaultValueFactory = _ => "auto",
        };
        var graph = new Option<string>("--graph")
        {
            Description = "On cuda|emu, replay the step as one captured CUDA graph: auto (try it, else op by op, saying why), on, off.",
            DefaultValueFactory = _ => "auto",
        };

        var train = new Command("train", "Time training steps of a model shape with random weights: tokens/s, op breakdown, peak memory, MFU.")
        {
            shape, seq, batch, type, rank, layers, positions, steps, warmup, peak, json, device, threads, attention, graph,
        };
        train.SetAction(parse =>
        {
            var config = ModelShapes.ByName(parse.GetValue(shape)!);
            int length = parse.GetValue(seq), sequences = parse.GetValue(batch), timed = parse.GetValue(steps), warm = parse.GetValue(warmup);
            if (length < 4 || length > config.MaxSeqLen)
            {
                throw new InputException($"--seq must be between 4 and the shape's {config.MaxSeqLen} positions (got {length})");
            }
            if (sequences < 1 || timed < 1 || warm < 0)
            {
                throw new InputException("--batch and --steps must be at least 1, --warmup at least 0");
            }
            var attentionPath = ParseAttention(parse.GetValue(attention)!);
            var graphMode = ParseGraph(parse.GetValue(graph)!);
            using var backend = ComputeDevices.Open(ComputeDevices.Parse(parse.GetValue(device)!), parse.GetValue(threads));
            var gpu = backend as CudaBackend;
            if (gpu is not null)
            {
                var attentionShape = new AttentionShape(sequences, length, length, length, 0, config.Heads, config.KvHeads, config.HeadSize);
                if (attentionPath == AttentionPath.TensorCore && gpu.TensorCoreAttentionProblem(attentionShape) is { } problem)
                {
                    throw new InputException($"--attention tensor-core: {problem}; use --attention auto or direct");
                }
                gpu.AttentionPath = attentionPath;
            }
            else if (attentionPath != AttentionPath.Auto || graphMode == GraphMode.On)
            {
                throw new InputException("--attention and --graph on are about the CUDA backend: use them with --device cuda or emu");
            }
            long weightBytes = ModelShapes.ParameterCount(config) * (backend.DType == Tensors.DType.BF16 ? 2 : 4);
            long available = gpu is { Runtime: CudaRuntime } ? gpu.Runtime.GetMemoryInfo().TotalBytes : GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
            if (weightBytes > available * 0.8)
            {
                throw new InputException(string.Create(CultureInfo.InvariantCulture,
                    $"the {parse.GetValue(shape)} weights alone take {weightBytes / (double)(1L << 30):F1} GiB on {backend.Name}, more than this machine's {available / (double)(1L << 30):F1} GiB allow: run this shape with --device cuda on a GPU, or pick a smaller --shape (odd, stories260K)"));
            }
            var clock = Stopwatch.StartNew();
            using var model = LlamaModel.Random(config, backend);
            backend.Synchronize();
            double loadSeconds = clock.Elapsed.TotalSeconds;
            var reft = new ReftConfig
            {
                Type = InterventionTypes.Parse(parse.GetValue(type)!),
                Rank = parse.GetValue(rank),
                Layers = LayerSpec.Parse(parse.GetValue(layers)!, config.Layers),
                Positions = PositionSpec.Parse(parse.GetValue(positions)!),
            };
            using var set = InterventionSet.Create(reft, model, seed: 1);
            var data = SyntheticBatch.Create(sequences, length, config.VocabSize);
            using var step = new FixedBatchStep(model, set, data);
            const double LearningRate = 1e-4;
            CapturedStep? captured = null;
            void Step()
            {
                if (captured is null)
                {
                    step.Run(LearningRate);
                    return;
                }
                captured.Run(step.Optimizer.Next(LearningRate));
                step.Scalars.Read();
            }

            long parameters = ModelShapes.ParameterCount(config);
            string where = gpu is null ? backend.Name : $"{backend.Name} on {gpu.Runtime.Name}";
            error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"bench train: {parse.GetValue(shape)} ({parameters:N0} parameters, random weights made in {loadSeconds:F1} s), batch {sequences} x seq {length}, {reft.Type.Name()} rank {reft.Rank} at {reft.Layers.Length} layers, positions {reft.Positions}; {where}"));
            for (int i = 0; i < warm; i++)
            {
                Step();
            }
            if (gpu is not null && graphMode != GraphMode.Off)
            {
                if (warm == 0)
                {
                    step.Run(LearningRate); // a capture needs one step run before it (the pool, the staging)
                }
                try
                {
                    captured = gpu.CaptureStep(step.Scalars, step.Queue);
                    error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"the step runs as one captured graph ({GraphNodes(captured)} launches, copies and fills; {captured.ReservedBytes / (double)(1L << 20):F1} MiB of device memory reserved for it)"));
                }
                catch (Exception e) when (graphMode == GraphMode.Auto && e is InvalidOperationException or CudaException)
                {
                    error.WriteLine($"graph capture failed, timing the step op by op instead: {e.Message}");
                }
            }
            gpu?.Runtime.Pool.ResetPeak();
            var times = new double[timed];
            bool terminal = ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected;
            for (int i = 0; i < timed; i++)
            {
                var watch = Stopwatch.StartNew();
                Step();
                times[i] = watch.Elapsed.TotalMilliseconds;
                string line = string.Create(CultureInfo.InvariantCulture, $"step {i + 1}/{timed}: {times[i]:F1} ms");
                if (terminal)
                {
                    error.Write("\r" + line + (i + 1 == timed ? "\n" : ""));
                }
                else
                {
                    error.WriteLine(line);
                }
            }
            Array.Sort(times);
            double stepMs = times[timed / 2];
            double tokensPerSecond = sequences * length / (stepMs / 1000);
            double peakBytes = gpu?.Runtime.Pool.PeakBytesInUse ?? Process.GetCurrentProcess().PeakWorkingSet64;
            double? heldBytes = gpu?.Runtime.Pool.PeakBytesHeld; // with the pool's cache: the device footprint
            double peakTflops = parse.GetValue(peak) > 0 ? parse.GetValue(peak) : KnownPeakTflops(gpu);
            double? mfu = peakTflops > 0 ? tokensPerSecond * 4.0 * parameters / (peakTflops * 1e12) : null;

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"step {stepMs:F1} ms (median of {timed}; fastest {times[0]:F1}, slowest {times[^1]:F1}), {tokensPerSecond:N0} tokens/s"));
            output.WriteLine(mfu is { } m
                ? string.Create(CultureInfo.InvariantCulture, $"MFU {m * 100:F1}% of {peakTflops:F0} TFLOP/s bf16 (4 N = {4.0 * parameters / 1e9:F1} GFLOP per token)")
                : "MFU: unknown peak for this device (pass --peak-tflops)");
            output.WriteLine(gpu is null
                ? $"peak process memory {DeviceMemoryText.Size(peakBytes)}"
                : DeviceMemoryText.Peaks(gpu.Runtime.Pool));
            bool graphed = captured is not null;
            captured?.Dispose();
            StepBreakdown.Totals? breakdown = null;
            if (gpu is not null)
            {
                output.WriteLine(graphed ? "step replayed as one CUDA graph" : "step queued op by op (no graph)");
                if (gpu.ResidualEpilogueFallback is { } reason)
                {
                    output.WriteLine($"the residual add runs outside the down projection's GEMM: {reason}");
                }
                breakdown = StepBreakdown.Print(output, gpu, () => step.Run(LearningRate));
            }
            if (parse.GetValue(json))
            {
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{{\"engine\": \"nativereft\", \"device\": \"{backend.Name}\", \"shape\": \"{parse.GetValue(shape)}\", \"batch\": {sequences}, \"seq\": {length}, \"rank\": {reft.Rank}, \"positions\": \"{reft.Positions}\", \"tokens_per_s\": {tokensPerSecond:F1}, \"step_ms\": {stepMs:F2}, \"peak_gib\": {peakBytes / (1L << 30):F3}, \"peak_reserved_gib\": {(heldBytes is { } h ? (h / (1L << 30)).ToString("F3", CultureInfo.InvariantCulture) : "null")}, \"mfu\": {(mfu is { } v ? v.ToString("F4", CultureInfo.InvariantCulture) : "null")}, \"graph\": {(graphed ? "true" : "false")}{(breakdown is null ? "" : ", " + breakdown.JsonFields())}}}"));
            }
            return 0;
        });
        return new Command("bench", "Benchmarks (random weights of a model shape, no download).") { train };
    }

    private enum GraphMode
    {
        Auto,
        On,
        Off,
    }

    private static GraphMode ParseGraph(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => GraphMode.Auto,
        "on" => GraphMode.On,
        "off" => GraphMode.Off,
        _ => throw new InputException($"unknown --graph '{text}': use auto, on or off"),
    };

    private static AttentionPath ParseAttention(string text) => text.Trim().ToLowerInvariant() switch
    {
        "auto" => AttentionPath.Auto,
        "direct" => AttentionPath.Direct,
        "tensor-core" or "tensorcore" => AttentionPath.TensorCore,
        _ => throw new InputException($"unknown --attention '{text}': use auto, direct or tensor-core"),
    };

    // The graph's node count, for the record; a driver that cannot say does not stop the benchmark.
    private static string GraphNodes(CapturedStep captured)
    {
        try
        {
            return captured.Nodes.ToString("N0", CultureInfo.InvariantCulture);
        }
        catch (CudaException e)
        {
            return $"(node count unknown: {e.Message})";
        }
    }

    // Dense bf16 tensor-core peaks from NVIDIA's datasheets (without sparsity).
    private static double KnownPeakTflops(CudaBackend? gpu)
    {
        string name = gpu?.Runtime.Properties.Name ?? "";
        return name.Contains("H100", StringComparison.Ordinal) || name.Contains("H200", StringComparison.Ordinal) ? 989
            : name.Contains("A100", StringComparison.Ordinal) ? 312
            : 0;
    }
}
