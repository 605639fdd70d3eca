using System.CommandLine;
using System.Globalization;
using NativeReft.Generation;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Tokenizers;
using NativeReft.Training;

namespace NativeReft.Cli.Commands;

/// <summary><c>nativereft eval</c>: loss and exact-match accuracy of greedy responses on a JSONL file.</summary>
internal static class EvalCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var model = new ModelArguments(demoWhenMissing: false);
        var intervention = new Option<string?>("--intervention") { Description = "A trained intervention directory (without it: the base model)." };
        var data = new Option<string>("--data") { Description = "JSONL with {\"prompt\", \"response\"} (or Alpaca) per line.", Required = true };
        var maxLength = new Option<int>("--max-length") { Description = "Longest example in tokens.", DefaultValueFactory = _ => 512 };
        var batchSize = new Option<int>("--batch-size") { Description = "Examples per forward pass for the loss.", DefaultValueFactory = _ => 8 };
        var show = new Option<int>("--show") { Description = "Print this many (prompt, expected, generated) triples.", DefaultValueFactory = _ => 3 };

        var command = new Command("eval", "Evaluate a model (with or without an intervention): loss and exact match of greedy responses.")
        {
            intervention, data, maxLength, batchSize, show,
        };
        model.AddTo(command);
        command.SetAction(parse =>
        {
            int batch = parse.GetValue(batchSize);
            if (batch <= 0)
            {
                throw new InputException($"--batch-size must be positive (got {batch})");
            }
            using var backend = model.Backend(parse);
            var (llama, tokenizer) = model.Open(parse, backend);
            using (llama)
            {
                string? path = parse.GetValue(intervention);
                using var set = path is null ? null : InterventionSet.Load(path, llama);
                string dataPath = parse.GetValue(data)!;
                var pairs = ReftDataset.ReadPairs(dataPath);
                var dataset = ReftDataset.FromPairs(dataPath, pairs, tokenizer, parse.GetValue(maxLength));
                var result = Evaluate(llama, tokenizer, set, pairs, dataset, batch);
                foreach (var (pair, generated) in pairs.Zip(result.Generations).Take(parse.GetValue(show)))
                {
                    output.WriteLine($"prompt:    {pair.Prompt}\nexpected:  {pair.Response}\ngenerated: {generated}\n");
                }
                output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"loss {result.Loss:F4} over {result.LabelledTokens} response tokens; exact match {result.ExactMatches}/{pairs.Count} ({100.0 * result.ExactMatches / pairs.Count:F1}%)"));
            }
            return 0;
        });
        return command;
    }

    internal sealed record Result(double Loss, int LabelledTokens, int ExactMatches, List<string> Generations);

    /// <summary>Mean loss over response tokens, and greedy generations compared with the responses.</summary>
    internal static Result Evaluate(LlamaModel model, ITokenizer tokenizer, InterventionSet? set,
        IReadOnlyList<ReftDataset.Pair> pairs, ReftDataset dataset, int batchSize)
    {
        double lossSum = 0;
        int labelled = 0;
        foreach (var chunk in dataset.Examples.Chunk(batchSize))
        {
            var batch = new ReftBatch(chunk);
            lossSum += ReftObjective.Loss(model, set, batch);
            labelled += batch.Targets.Length;
        }
        var generator = new Generator(model, tokenizer, set);
        var generations = new List<string>();
        int exact = 0;
        foreach (var (pair, example) in pairs.Zip(dataset.Examples))
        {
            // Room for the expected response plus a margin, so a longer wrong answer is seen as wrong.
            int budget = Math.Min(model.Config.MaxSeqLen, example.Tokens.Length + 8);
            _ = string.Concat(generator.Generate(pair.Prompt, new GenerationOptions { Temperature = 0, MaxTokens = budget }));
            generations.Add(tokenizer.Decode([.. generator.Continuation]).Trim());
            // Exact match: the response's tokens, every one, are what greedy decoding produced first.
            int[] expected = example.Tokens[example.PromptLength..];
            if (expected.Length > 0 && expected[^1] == tokenizer.EosId)
            {
                expected = expected[..^1]; // the stop is not compared: llama2.c models end stories with BOS, not EOS
            }
            if (generator.Continuation.Count >= expected.Length && generator.Continuation.Take(expected.Length).SequenceEqual(expected))
            {
                exact++;
            }
        }
        return new Result(lossSum / Math.Max(1, labelled), labelled, exact, generations);
    }
}
