using NativeReft.Model;
using NativeReft.Tokenizers;

namespace NativeReft.IO;

/// <summary>
/// A loaded model file: its config, its weights by canonical name (still in the file, memory-mapped) and the
/// tokenizer it carries, if any. Disposing it unmaps the files.
/// </summary>
public sealed class Checkpoint : IDisposable
{
    private readonly IReadOnlyList<MappedFile> files;

    /// <summary>Validates that <paramref name="weights"/> holds exactly what <paramref name="config"/> needs.</summary>
    public Checkpoint(string path, LlamaConfig config, IReadOnlyDictionary<string, WeightTensor> weights,
        IReadOnlyList<MappedFile> files, ITokenizer? tokenizer = null)
    {
        Path = path;
        Config = config;
        Weights = weights;
        Tokenizer = tokenizer;
        this.files = files;
        config.Validate(path);
        foreach (var (name, shape) in WeightNames.Expected(config))
        {
            if (!weights.TryGetValue(name, out var w))
            {
                throw new ModelFormatException(path, $"missing tensor '{name}' (expected shape ({string.Join(", ", shape)}))");
            }
            if (!w.Shape.AsSpan().SequenceEqual(shape))
            {
                throw new ModelFormatException(path,
                    $"tensor '{name}' has shape {w.ShapeText}, the config needs ({string.Join(", ", shape)})");
            }
        }
        if (tokenizer is not null)
        {
            CheckTokenizer(tokenizer, path);
        }
    }

    /// <summary>Where the checkpoint was loaded from.</summary>
    public string Path { get; }

    /// <summary>The model's shape and numerics.</summary>
    public LlamaConfig Config { get; }

    /// <summary>Weights by canonical name (<see cref="WeightNames"/>).</summary>
    public IReadOnlyDictionary<string, WeightTensor> Weights { get; }

    /// <summary>The tokenizer stored with the model (GGUF, HF directory), or null.</summary>
    public ITokenizer? Tokenizer { get; private set; }

    /// <summary>Uses <paramref name="tokenizer"/> (loaded from <paramref name="source"/>) after checking it fits.</summary>
    public void UseTokenizer(ITokenizer tokenizer, string source)
    {
        CheckTokenizer(tokenizer, source);
        Tokenizer = tokenizer;
    }

    private void CheckTokenizer(ITokenizer tokenizer, string source)
    {
        if (tokenizer.VocabSize != Config.VocabSize)
        {
            throw new ModelFormatException(source,
                $"the tokenizer has {tokenizer.VocabSize} tokens but the model {Path} has a vocabulary of {Config.VocabSize}: use the tokenizer the model was trained with");
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var f in files)
        {
            f.Dispose();
        }
    }
}
