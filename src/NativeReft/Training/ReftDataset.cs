using System.Text.Json;
using NativeReft.Tokenizers;

namespace NativeReft.Training;

/// <summary>
/// Training data from JSONL: one object per line, either <c>{"prompt": ..., "response": ...}</c> or Alpaca's
/// <c>{"instruction": ..., "input": ..., "output": ...}</c> (prompt = instruction, then a blank line and the input
/// when there is one). Prompts get BOS and ignored labels; responses get EOS appended; examples longer than the
/// maximum length keep their prompt and lose the end of their response, and are counted.
/// </summary>
public sealed class ReftDataset
{
    private ReftDataset(string path, IReadOnlyList<ReftExample> examples, int truncated)
    {
        Path = path;
        Examples = examples;
        Truncated = truncated;
    }

    /// <summary>The data file.</summary>
    public string Path { get; }

    /// <summary>The examples, in file order.</summary>
    public IReadOnlyList<ReftExample> Examples { get; }

    /// <summary>Examples whose response was cut to fit the maximum length.</summary>
    public int Truncated { get; }

    /// <summary>A (prompt, response) pair before tokenization, with its line number.</summary>
    public sealed record Pair(string Prompt, string Response, int Line);

    /// <summary>Reads the (prompt, response) pairs of a JSONL file; every problem names the line.</summary>
    public static List<Pair> ReadPairs(string path)
    {
        if (!File.Exists(path))
        {
            throw new InputException($"{path}: data file not found");
        }
        var pairs = new List<Pair>();
        int lineNumber = 0;
        foreach (string line in File.ReadLines(path))
        {
            lineNumber++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            pairs.Add(ParseLine(line, path, lineNumber));
        }
        if (pairs.Count == 0)
        {
            throw new InputException($"{path}: the data file has no examples (expected one JSON object per line with \"prompt\" and \"response\")");
        }
        return pairs;
    }

    /// <summary>Reads and tokenizes <paramref name="path"/>.</summary>
    public static ReftDataset Load(string path, ITokenizer tokenizer, int maxLength) =>
        FromPairs(path, ReadPairs(path), tokenizer, maxLength);

    /// <summary>Tokenizes pairs (from a file or built in memory, named by <paramref name="source"/>).</summary>
    public static ReftDataset FromPairs(string source, IReadOnlyList<Pair> pairs, ITokenizer tokenizer, int maxLength)
    {
        ArgumentNullException.ThrowIfNull(pairs);
        ArgumentNullException.ThrowIfNull(tokenizer);
        if (maxLength < 2)
        {
            throw new InputException($"--max-length must be at least 2 (got {maxLength})");
        }
        var examples = new List<ReftExample>(pairs.Count);
        int truncated = 0;
        foreach (var pair in pairs)
        {
            int[] prompt = tokenizer.Encode(pair.Prompt, addBos: true, addEos: false);
            int[] response = [.. tokenizer.Encode(pair.Response, addBos: false, addEos: false), tokenizer.EosId];
            if (prompt.Length >= maxLength)
            {
                throw new InputException($"{source}:{pair.Line}: the prompt is {prompt.Length} tokens, which leaves no room for a response within --max-length {maxLength}; shorten it or raise --max-length");
            }
            if (prompt.Length + response.Length > maxLength)
            {
                response = response[..(maxLength - prompt.Length)];
                truncated++;
            }
            examples.Add(new ReftExample([.. prompt, .. response], prompt.Length, pair.Line));
        }
        return new ReftDataset(source, examples, truncated);
    }

    private static Pair ParseLine(string line, string path, int lineNumber)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            throw new InputException($"{path}:{lineNumber}: not valid JSON ({e.Message})", e);
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
            {
                throw new InputException($"{path}:{lineNumber}: expected a JSON object, found {root.ValueKind}");
            }
            string? Text(string key)
            {
                if (!root.TryGetProperty(key, out var value) || value.ValueKind == JsonValueKind.Null)
                {
                    return null;
                }
                return value.ValueKind == JsonValueKind.String
                    ? value.GetString()
                    : throw new InputException($"{path}:{lineNumber}: \"{key}\" must be a string, found {value.ValueKind}");
            }
            string? prompt = Text("prompt"), response = Text("response");
            if (prompt is not null && response is not null)
            {
                return new Pair(prompt, response, lineNumber);
            }
            string? instruction = Text("instruction"), output = Text("output");
            if (instruction is not null && output is not null)
            {
                string input = Text("input") ?? "";
                return new Pair(input.Length > 0 ? $"{instruction}\n\n{input}" : instruction, output, lineNumber);
            }
            throw new InputException($"{path}:{lineNumber}: expected \"prompt\" and \"response\" (or Alpaca's \"instruction\" and \"output\")");
        }
    }
}
