using System.CommandLine;
using System.Globalization;
using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.Reft;
using NativeReft.Reporting;
using NativeReft.Training;

namespace NativeReft.Cli.Commands;

/// <summary><c>nativereft train</c>: train interventions on a frozen model from a JSONL file.</summary>
internal static class TrainCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelArguments(demoWhenMissing: false);
        var data = new Option<string>("--data") { Description = "Training data: JSONL with {\"prompt\", \"response\"} or Alpaca {\"instruction\", \"input\", \"output\"} per line.", Required = true };
        var outDir = new Option<string>("--out") { Description = "Directory for the artifact (intervention.safetensors + intervention.json), checkpoint.safetensors and loss.png.", Required = true };
        var type = new Option<string>("--type") { Description = $"Intervention: {InterventionTypes.AllNames}.", DefaultValueFactory = _ => "loreft" };
        var rank = new Option<int>("--rank") { Description = "Rank r of the intervention subspace.", DefaultValueFactory = _ => 4 };
        var layers = new Option<string>("--layers") { Description = "Layers whose output is edited: 'all' or e.g. \"2;10;18\".", DefaultValueFactory = _ => "all" };
        var positions = new Option<string>("--positions") { Description = "Prompt positions: f<first>+l<last>, e.g. f7+l7 (each clamped to half the prompt).", DefaultValueFactory = _ => "f7+l7" };
        var untied = new Option<bool>("--untied") { Description = "Separate interventions for the first and the last positions." };
        var activation = new Option<string>("--activation") { Description = "Activation on the learned source: linear, relu, silu, tanh.", DefaultValueFactory = _ => "linear" };
        var lr = new Option<double>("--lr") { Description = "Peak learning rate.", DefaultValueFactory = _ => 9e-4 };
        var epochs = new Option<int>("--epochs") { Description = "Passes over the data.", DefaultValueFactory = _ => 1 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per forward pass.", DefaultValueFactory = _ => 4 };
        var gradAccum = new Option<int>("--grad-accum") { Description = "Forward passes per optimizer step.", DefaultValueFactory = _ => 1 };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens; longer responses are cut (and counted).", DefaultValueFactory = _ => 512 };
        var dropout = new Option<double>("--dropout") { Description = "Dropout on the edited state (pyreft applies it to the whole output).", DefaultValueFactory = _ => 0 };
        var weightDecay = new Option<double>("--weight-decay") { Description = "AdamW weight decay (never applied to orthonormal R).", DefaultValueFactory = _ => 0 };
        var warmup = new Option<double>("--warmup-ratio") { Description = "Fraction of steps of linear warmup.", DefaultValueFactory = _ => 0 };
        var schedule = new Option<string>("--schedule") { Description = "Decay after warmup: linear or cosine.", DefaultValueFactory = _ => "linear" };
        var maxGradNorm = new Option<double>("--max-grad-norm") { Description = "Clip the global gradient norm (0: off).", DefaultValueFactory = _ => 1.0 };
        var seed = new Option<int>("--seed") { Description = "Seed for initialisation, data order and dropout.", DefaultValueFactory = _ => 42 };
        var saveEvery = new Option<int>("--save-every") { Description = "Checkpoint every N optimizer steps (and at the end).", DefaultValueFactory = _ => 100 };
        var resume = new Option<bool>("--resume") { Description = "Continue the run whose checkpoint is in --out." };

        var command = new Command("train", "Train ReFT interventions on a frozen model.")
        {
            data, outDir, type, rank, layers, positions, untied, activation, lr, epochs, batchSize, gradAccum, maxLength,
            dropout, weightDecay, warmup, schedule, maxGradNorm, seed, saveEvery, resume,
        };
        model.AddTo(command);
        command.SetAction(parse =>
        {
            var options = new TrainingOptions
            {
                Epochs = parse.GetValue(epochs),
                BatchSize = parse.GetValue(batchSize),
                GradientAccumulation = parse.GetValue(gradAccum),
                LearningRate = parse.GetValue(lr),
                WeightDecay = parse.GetValue(weightDecay),
                WarmupRatio = parse.GetValue(warmup),
                Schedule = ParseSchedule(parse.GetValue(schedule)!),
                MaxGradNorm = parse.GetValue(maxGradNorm),
                Seed = parse.GetValue(seed),
                SaveEvery = parse.GetValue(saveEvery),
            };
            options.Validate();
            var positionSpec = PositionSpec.Parse(parse.GetValue(positions)!);
            var interventionType = InterventionTypes.Parse(parse.GetValue(type)!);
            var activationKind = ParseActivation(parse.GetValue(activation)!);
            string dir = parse.GetValue(outDir)!;
            string checkpoint = Path.Combine(dir, ReftTrainer.CheckpointFile);
            bool resuming = parse.GetValue(resume);
            if (resuming && !File.Exists(checkpoint))
            {
                throw new InputException($"--resume: {checkpoint} does not exist, so there is no run to continue");
            }
            if (!resuming && File.Exists(checkpoint))
            {
                throw new InputException($"{dir} already holds a training run ({ReftTrainer.CheckpointFile}); pass --resume to continue it, or choose another --out");
            }

            using var backend = model.Backend(parse);
            var (llama, tokenizer) = model.Open(parse, backend);
            using (llama)
            {
                Directory.CreateDirectory(dir);
                var dataset = ReftDataset.Load(parse.GetValue(data)!, tokenizer, parse.GetValue(maxLength));
                var config = new ReftConfig
                {
                    Type = interventionType,
                    Rank = parse.GetValue(rank),
                    Layers = LayerSpec.Parse(parse.GetValue(layers)!, llama.Config.Layers),
                    Positions = positionSpec,
                    Tied = !parse.GetValue(untied),
                    Activation = activationKind,
                    Dropout = parse.GetValue(dropout),
                };
                using var set = resuming ? InterventionSet.Load(checkpoint, llama) : InterventionSet.Create(config, llama, options.Seed);
                if (resuming && !SameConfig(set.Config, config))
                {
                    throw new InputException($"--resume: the checkpoint in {dir} was trained with {ReftConfigJson.Write(set.Config).ReplaceLineEndings(" ")}; pass the same intervention options");
                }
                var trainer = new ReftTrainer(llama, set, dataset, options);
                if (resuming)
                {
                    trainer.Resume(checkpoint);
                }
                error.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{dataset.Examples.Count} examples ({dataset.Truncated} truncated to --max-length {parse.GetValue(maxLength)}), {trainer.TotalSteps} steps; {config.Type.Name()} rank {config.Rank} at layers {string.Join(";", config.Layers)}, positions {config.Positions}{(config.Tied ? "" : " untied")}, {set.Interventions.Sum(i => i.Slots().Sum(s => s.Parameter.Length)):N0} parameters{(resuming ? $"; resuming at step {trainer.Step}" : "")}"));
                try
                {
                    trainer.Train(checkpoint, new ProgressBar(error, interactive: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected));
                }
                finally
                {
                    if (trainer.Losses.Count > 0)
                    {
                        Directory.CreateDirectory(dir);
                        LossCurvePng.Write(Path.Combine(dir, "loss.png"), trainer.Losses);
                    }
                }
                set.Save(dir);
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"saved {Path.Combine(dir, InterventionSet.WeightsFile)}; loss {trainer.Losses[0]:F4} -> {trainer.Losses[^1]:F4}  {Sparkline.Render(trainer.Losses)}"));
                if (backend is CudaBackend gpu)
                {
                    error.WriteLine(DeviceMemoryText.Peaks(gpu.Runtime.Pool)); // the weights, the steps and their cache
                }
            }
            return 0;
        });
        return command;
    }

    internal static ScheduleKind ParseSchedule(string text) => text.ToLowerInvariant() switch
    {
        "linear" => ScheduleKind.Linear,
        "cosine" => ScheduleKind.Cosine,
        _ => throw new InputException($"unknown --schedule '{text}' (expected linear or cosine)"),
    };

    internal static Activation ParseActivation(string text) =>
        Enum.TryParse<Activation>(text, ignoreCase: true, out var a) && Enum.IsDefined(a) && !int.TryParse(text, out _)
            ? a
            : throw new InputException($"unknown --activation '{text}' (expected linear, relu, silu or tanh)");

    private static bool SameConfig(ReftConfig a, ReftConfig b) =>
        a.Type == b.Type && a.Rank == b.Rank && a.Layers.SequenceEqual(b.Layers) && a.Positions == b.Positions
        && a.Tied == b.Tied && a.Activation == b.Activation && a.Dropout == b.Dropout;
}
