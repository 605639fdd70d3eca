using System.CommandLine;
using System.Diagnostics;
using NativeReft.Backends.Cpu;
using NativeReft.Generation;
using NativeReft.IO;
using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.Cli.Commands;

/// <summary><c>nativereft generate</c>: continue a prompt with a model, streaming the text.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new Option<string?>("--model") { Description = "Model: an HF directory, a .gguf file or a llama2.c .bin. Without it, a built-in demo model the engine constructs in memory." };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer: llama2.c tokenizer.bin, SentencePiece .model or HF tokenizer.json (default: the one inside the model)." };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Positions to run, prompt and BOS included (llama2.c's -n).", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 1.0f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold in (0, 1]; 1 disables it.", DefaultValueFactory = _ => 0.9f };
        var seed = new Option<ulong?>("--seed") { Description = "Random seed (default: from the clock)." };
        var threads = new Option<int>("--threads") { Description = "CPU threads (default: all cores).", DefaultValueFactory = _ => 0 };

        var command = new Command("generate", "Continue a prompt with a model, streaming the text as it is made.")
        {
            model, tokenizer, prompt, maxTokens, temperature, topP, seed, threads,
        };
        command.SetAction(parse =>
        {
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed) ?? (ulong)DateTime.UtcNow.Ticks,
            };
            CheckOptions(options, parse.GetValue(threads));
            using var backend = new CpuBackend<float>(parse.GetValue(threads));
            var (llama, tok) = Open(parse.GetValue(model), parse.GetValue(tokenizer), backend);
            using (llama)
            {
                var generator = new Generator(llama, tok);
                // As llama2.c: the clock starts after the first generated token, which also pays for JIT warm-up.
                Stopwatch? clock = null;
                int timedFrom = 0;
                foreach (string piece in generator.Generate(parse.GetValue(prompt) ?? "", options))
                {
                    output.Write(piece);
                    output.Flush();
                    if (clock is null && generator.GeneratedTokens > 0)
                    {
                        clock = Stopwatch.StartNew();
                        timedFrom = generator.GeneratedTokens;
                    }
                }
                output.WriteLine();
                int timed = generator.GeneratedTokens - timedFrom;
                if (clock is not null && timed > 0)
                {
                    double seconds = clock.Elapsed.TotalSeconds;
                    error.WriteLine($"achieved tok/s: {timed / seconds:F1} ({generator.GeneratedTokens} tokens; the last {timed} in {seconds:F2} s on {backend.Name}, {backend.Threads} threads)");
                }
            }
            return 0;
        });
        return command;
    }

    private static void CheckOptions(GenerationOptions options, int threads)
    {
        if (options.MaxTokens <= 0)
        {
            throw new InputException($"--max-tokens must be positive (got {options.MaxTokens})");
        }
        if (!(options.Temperature >= 0) || !float.IsFinite(options.Temperature))
        {
            throw new InputException($"--temperature must be a finite number >= 0 (got {options.Temperature})");
        }
        if (!(options.TopP > 0 && options.TopP <= 1))
        {
            throw new InputException($"--top-p must be in (0, 1] (got {options.TopP})");
        }
        if (threads < 0)
        {
            throw new InputException($"--threads must be 0 (all cores) or positive (got {threads})");
        }
    }

    private static (LlamaModel Model, ITokenizer Tokenizer) Open(string? modelPath, string? tokenizerPath, CpuBackend<float> backend)
    {
        if (modelPath is null)
        {
            var (config, weights, demoTokenizer) = DemoModel.Create();
            return (LlamaModel.FromWeights(config, weights, backend), demoTokenizer);
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
