using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.Generation;

/// <summary>
/// Continues a prompt token by token through the KV cache, as llama2.c's <c>generate</c>: the sequence starts at
/// BOS, the prompt is fed whole (one prefill), and generation stops at BOS or EOS or after MaxTokens positions.
/// Text is produced as pieces, each the new suffix of the decoded sequence, so multi-byte characters split over
/// byte tokens come out whole.
/// </summary>
public sealed class Generator
{
    private readonly LlamaModel model;
    private readonly ITokenizer tokenizer;
    private readonly Reft.InterventionSet? interventions;

    /// <summary>
    /// Pairs a model with its tokenizer and, optionally, interventions: they edit the prompt positions during
    /// prefill (as in training), and generated tokens see the edits through the KV cache.
    /// </summary>
    public Generator(LlamaModel model, ITokenizer tokenizer, Reft.InterventionSet? interventions = null)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.tokenizer = tokenizer ?? throw new ArgumentNullException(nameof(tokenizer));
        this.interventions = interventions;
    }

    /// <summary>The tokens of the last <see cref="Generate"/> call's continuation (prompt excluded).</summary>
    public IReadOnlyList<int> Continuation => continuation;

    private readonly List<int> continuation = [];

    /// <summary>Tokens produced by the last <see cref="Generate"/> call, prompt excluded.</summary>
    public int GeneratedTokens { get; private set; }

    /// <summary>
    /// Yields the text of the continuation of <paramref name="prompt"/> piece by piece (the prompt's own text is
    /// yielded first, as llama2.c echoes it).
    /// </summary>
    public IEnumerable<string> Generate(string prompt, GenerationOptions options)
    {
        ArgumentNullException.ThrowIfNull(prompt);
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxTokens <= 0)
        {
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxTokens, "max tokens must be positive");
        }
        int[] promptTokens = tokenizer.Encode(prompt, addBos: true, addEos: false);
        int steps = Math.Min(options.MaxTokens, model.Config.MaxSeqLen);
        if (promptTokens.Length > steps)
        {
            throw new InputException($"the prompt is {promptTokens.Length} tokens long (BOS included); max tokens ({steps}, capped at the model's {model.Config.MaxSeqLen} positions) must be at least that");
        }
        return Run(promptTokens, steps, options);
    }

    private IEnumerable<string> Run(int[] promptTokens, int steps, GenerationOptions options)
    {
        GeneratedTokens = 0;
        continuation.Clear();
        var sampler = new Sampler(options.Temperature, options.TopP, options.Seed);
        var sequence = new List<int>(promptTokens);
        var logits = new float[model.Config.VocabSize];
        int emitted = 0;
        using var cache = model.CreateCache(1, steps);
        using var output = model.Backend.Zeros(1, model.Config.VocabSize);
        string text = tokenizer.Decode(promptTokens);
        if (text.Length > 0)
        {
            emitted = text.Length;
            yield return text;
        }
        while (sequence.Count <= steps) // each pass runs one more position; llama2.c runs `steps` of them
        {
            bool prefill = promptTokens.Length == sequence.Count;
            model.Step(cache, prefill ? promptTokens : [sequence[^1]], output, prefill ? Plan(promptTokens.Length) : null);
            model.Backend.Download(output, logits);
            int next = sampler.Sample(logits);
            if (next == tokenizer.BosId || next == tokenizer.EosId)
            {
                yield break;
            }
            sequence.Add(next);
            continuation.Add(next);
            GeneratedTokens++;
            text = tokenizer.Decode(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(sequence));
            // Hold back an incomplete UTF-8 character (decoded as U+FFFD) until its last byte arrives.
            int end = text.Length > 0 && text[^1] == '\uFFFD' ? text.Length - 1 : text.Length;
            if (end > emitted)
            {
                yield return text[emitted..end];
                emitted = end;
            }
        }
    }

    private Reft.InterventionPlan? Plan(int promptLength)
    {
        if (interventions is null)
        {
            return null;
        }
        var plan = new Reft.InterventionPlan();
        foreach (var intervention in interventions.Interventions)
        {
            plan.Add(new Reft.AppliedIntervention(intervention, interventions.Config.PositionsOf(intervention.Side, promptLength), null));
        }
        return plan;
    }
}
