using System.CommandLine;
using System.Diagnostics;
using NativeReft.Generation;
using NativeReft.Reft;

namespace NativeReft.Cli.Commands;

/// <summary><c>nativereft generate</c>: continue a prompt with a model, streaming the text.</summary>
internal static class GenerateCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelArguments(demoWhenMissing: true);
        var intervention = new Option<string?>("--intervention") { Description = "A trained intervention (the --out directory of `train`) applied to the prompt positions." };
        var prompt = new Option<string>("--prompt") { Description = "Text to continue.", DefaultValueFactory = _ => "" };
        var maxTokens = new Option<int>("--max-tokens") { Description = "Positions to run, prompt and BOS included (llama2.c's -n).", DefaultValueFactory = _ => 256 };
        var temperature = new Option<float>("--temperature") { Description = "Sampling temperature; 0 is greedy.", DefaultValueFactory = _ => 1.0f };
        var topP = new Option<float>("--top-p") { Description = "Nucleus sampling threshold in (0, 1]; 1 disables it.", DefaultValueFactory = _ => 0.9f };
        var seed = new Option<ulong?>("--seed") { Description = "Random seed (default: from the clock)." };

        var command = new Command("generate", "Continue a prompt with a model, streaming the text as it is made.")
        {
            intervention, prompt, maxTokens, temperature, topP, seed,
        };
        model.AddTo(command);
        command.SetAction(parse =>
        {
            var options = new GenerationOptions
            {
                MaxTokens = parse.GetValue(maxTokens),
                Temperature = parse.GetValue(temperature),
                TopP = parse.GetValue(topP),
                Seed = parse.GetValue(seed) ?? (ulong)DateTime.UtcNow.Ticks,
            };
            CheckOptions(options);
            using var backend = model.Backend(parse);
            var (llama, tok) = model.Open(parse, backend);
            using (llama)
            {
                string? interventionPath = parse.GetValue(intervention);
                using var interventions = interventionPath is null ? null : InterventionSet.Load(interventionPath, llama);
                var generator = new Generator(llama, tok, interventions);
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
                    error.WriteLine($"achieved tok/s: {timed / seconds:F1} ({generator.GeneratedTokens} tokens; the last {timed} in {seconds:F2} s on {backend.Name}{(backend is NativeReft.Backends.Cpu.CpuBackend<float> cpu ? $", {cpu.Threads} threads" : "")})");
                }
            }
            return 0;
        });
        return command;
    }

    private static void CheckOptions(GenerationOptions options)
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
    }
}
