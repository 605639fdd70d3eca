using System.CommandLine;
using NativeReft.Backends;
using NativeReft.Cuda;
using NativeReft.IO;
using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.Cli.Commands;

/// <summary>The options every model-using command shares (--model, --tokenizer, --device, --threads) and how they open a model.</summary>
internal sealed class ModelArguments
{
    private readonly bool demoWhenMissing;

    public ModelArguments(bool demoWhenMissing)
    {
        this.demoWhenMissing = demoWhenMissing;
        Model = new Option<string?>("--model")
        {
            Description = demoWhenMissing
                ? "Model: an HF directory, a .gguf file or a llama2.c .bin. Without it, a built-in demo model the engine constructs in memory."
                : "Model: an HF directory, a .gguf file or a llama2.c .bin.",
            Required = !demoWhenMissing,
        };
    }

    public Option<string?> Model { get; }

    public Option<string?> Tokenizer { get; } = new("--tokenizer") { Description = "Tokenizer: llama2.c tokenizer.bin, SentencePiece .model or HF tokenizer.json (default: the one inside the model)." };

    public Option<int> Threads { get; } = new("--threads") { Description = "CPU threads for --device cpu (default: all cores).", DefaultValueFactory = _ => 0 };

    public Option<string> Device { get; } = new("--device")
    {
        Description = $"Where to compute: {ComputeDevices.Names} (default: cuda when a GPU is usable, else cpu). emu runs the CUDA kernels on the CPU emulator (slow; for checking).",
        DefaultValueFactory = _ => "auto",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(Tokenizer);
        command.Options.Add(Device);
        command.Options.Add(Threads);
    }

    /// <summary>The backend --device names (the CPU one with the requested threads).</summary>
    public IBackend Backend(ParseResult parse)
    {
        int threads = parse.GetValue(Threads);
        if (threads < 0)
        {
            throw new InputException($"--threads must be 0 (all cores) or positive (got {threads})");
        }
        return ComputeDevices.Open(ComputeDevices.Parse(parse.GetValue(Device) ?? "auto"), threads);
    }

    /// <summary>Loads the model and its tokenizer onto <paramref name="backend"/>.</summary>
    public (LlamaModel Model, ITokenizer Tokenizer) Open(ParseResult parse, IBackend backend)
    {
        string? modelPath = parse.GetValue(Model);
        string? tokenizerPath = parse.GetValue(Tokenizer);
        if (modelPath is null && demoWhenMissing)
        {
            var (config, weights, demoTokenizer) = DemoModel.Create();
            return (LlamaModel.FromWeights(config, weights, backend), demoTokenizer);
        }
        if (modelPath is null)
        {
            throw new InputException("--model is required");
        }
        using var checkpoint = ModelLoader.Load(modelPath);
        if (tokenizerPath is not null)
        {
            checkpoint.UseTokenizer(TokenizerLoader.Load(tokenizerPath, checkpoint.Config.BosId, checkpoint.Config.EosId), tokenizerPath);
        }
        var tokenizer = checkpoint.Tokenizer
            ?? throw new InputException($"{modelPath} carries no tokenizer: pass --tokenizer PATH (a llama2.c tokenizer.bin, a SentencePiece .model or an HF tokenizer.json)");
        return (LlamaModel.Load(checkpoint, backend), tokenizer);
    }
}
