using NativeReft.Backends;
using NativeReft.IO;
using NativeReft.Model;
using NativeReft.Tensors;
using NativeReft.Tokenizers;
using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>stories260K on a backend, with its tokenizer, and small datasets for training tests.</summary>
internal static class Stories
{
    public static (LlamaModel Model, ITokenizer Tokenizer) Load(IBackend backend)
    {
        using var checkpoint = Llama2cLoader.Load(TestData.Stories260K("stories260K.bin"));
        return (LlamaModel.Load(checkpoint, backend), Llama2cTokenizerLoader.Load(TestData.Stories260K("tok512.bin")));
    }

    /// <summary>
    /// stories260K with every weight rounded to bf16 first: on a float backend, the model a bf16 device computes
    /// with, so that comparing the two measures only the device's activation rounding.
    /// </summary>
    public static LlamaModel LoadRoundedToBFloat16(IBackend backend)
    {
        using var checkpoint = Llama2cLoader.Load(TestData.Stories260K("stories260K.bin"));
        var weights = checkpoint.Weights.ToDictionary(w => w.Key, w => w.Value.ReadAll().Select(v => BFloat16.FromFloat(v).ToFloat()).ToArray());
        return LlamaModel.FromWeights(checkpoint.Config, weights, backend);
    }

    public static readonly ReftDataset.Pair[] Pairs =
    [
        new("Who is Lily?", "Lily is a girl who likes to play in the park.", 1),
        new("What did Tom see?", "Tom saw a big red ball in the sky.", 2),
        new("Where is the cat?", "The cat is under the table.", 3),
        new("What is your name?", "My name is Ben and I am a dog.", 4),
        new("Tell me a story.", "Once upon a time there was a happy frog.", 5),
    ];

    public static ReftDataset Dataset(ITokenizer tokenizer, int maxLength = 64) =>
        ReftDataset.FromPairs("stories-test", Pairs, tokenizer, maxLength);
}
