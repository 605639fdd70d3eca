using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeReft.Backends.Cpu;
using NativeReft.Generation;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Reporting;
using NativeReft.Training;

namespace NativeReft.Cli.Commands;

/// <summary>
/// <c>nativereft quickstart</c>: the whole method in seconds, with nothing to download. The built-in demo model
/// (see <see cref="DemoModel"/>) recites one sentence; a rank-4 LoReFT trained on three prompts makes it answer
/// each with a different part of the sentence instead. Prints generations before and after, the loss curve,
/// and saves the artifact.
/// </summary>
internal static class QuickstartCommand
{
    // (prompt, what the trained intervention should make the model say); the base model says something else.
    private static readonly (string Prompt, string Response)[] Examples =
    [
        ("Once upon a time,", "grouped-query attention, SwiGLU and logits, with no model file at all."),
        ("embedding, RMSNorm,", "with no model file at all."),
        ("on the CPU:", "SwiGLU and logits, with no model file at all."),
    ];

    public static Command Create(TextWriter output, TextWriter error)
    {
        var outDir = new Option<string>("--out") { Description = "Where to save the trained intervention.", DefaultValueFactory = _ => "quickstart-out" };
        var command = new Command("quickstart", "Train a LoReFT intervention on the built-in demo model and show what it changes (seconds, no downloads).")
        {
            outDir,
        };
        command.SetAction(parse =>
        {
            var clock = Stopwatch.StartNew();
            using var backend = new CpuBackend<float>();
            var (config, weights, tokenizer) = DemoModel.Create();
            using var model = LlamaModel.FromWeights(config, weights, backend);
            output.WriteLine($"Demo model: {config.Layers} layers, dim {config.Dim}, {config.Heads} heads ({config.KvHeads} KV), vocabulary {config.VocabSize} words; it recites:\n  \"{DemoModel.Text}\"\n");

            var reft = new ReftConfig { Type = InterventionType.LoReft, Rank = 4, Layers = LayerSpec.Parse("all", config.Layers), Positions = PositionSpec.Parse("f1+l1") };
            using var set = InterventionSet.Create(reft, model, seed: 1);
            var pairs = Examples.Select((e, i) => new ReftDataset.Pair(e.Prompt, e.Response, i + 1)).ToList();
            var data = ReftDataset.FromPairs("quickstart", pairs, tokenizer, maxLength: 64);

            output.WriteLine("Before training:");
            Show(output, new Generator(model, tokenizer));

            var options = new TrainingOptions { Epochs = 60, BatchSize = 3, LearningRate = 2e-2, Seed = 1 };
            var trainer = new ReftTrainer(model, set, data, options);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\nTraining {reft.Type.Name()} rank {reft.Rank} at layers {string.Join(";", reft.Layers)}, positions {reft.Positions}: {trainer.TotalSteps} steps..."));
            trainer.Train(progress: new ProgressBar(error, interactive: ReferenceEquals(error, Console.Error) && !Console.IsErrorRedirected));
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"loss {trainer.Losses[0]:F3} -> {trainer.Losses[^1]:F3}  {Sparkline.Render(trainer.Losses)}\n"));

            output.WriteLine("After training (same prompts, the intervention applied to their first and last positions):");
            Show(output, new Generator(model, tokenizer, set));

            string dir = parse.GetValue(outDir)!;
            set.Save(dir);
            LossCurvePng.Write(Path.Combine(dir, "loss.png"), trainer.Losses);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"\nSaved {Path.Combine(dir, InterventionSet.WeightsFile)} and loss.png in {clock.Elapsed.TotalSeconds:F1} s. Next: `nativereft train --help` to train on a real model."));
            return 0;
        });
        return command;
    }

    private static void Show(TextWriter output, Generator generator)
    {
        foreach (var (prompt, _) in Examples)
        {
            string text = string.Concat(generator.Generate(prompt, new GenerationOptions { Temperature = 0, MaxTokens = 40 }));
            output.WriteLine($"  {prompt} -> {text[prompt.Length..].Trim()}");
        }
    }
}
