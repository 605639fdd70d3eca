using NativeReft.Cuda;
using NativeReft.Generation;
using NativeReft.IO;
using NativeReft.Model;
using NativeReft.Reft;
using NativeReft.Training;

namespace NativeReft.Tests;

/// <summary>The README's "Use it from .NET" sample, run as written (paths aside), so the sample stays true.</summary>
public sealed class LibraryApiTests
{
    [Test]
    public void The_readme_sample_trains_saves_loads_and_generates()
    {
        string runs = TestData.TempDirectory();
        using var checkpoint = ModelLoader.Load(TestData.Stories260K("stories260K.gguf"));
        using var backend = ComputeDevices.Open(ComputeDevice.Auto);
        using var model = LlamaModel.Load(checkpoint, backend);
        var tokenizer = checkpoint.Tokenizer!;

        var config = new ReftConfig { Type = InterventionType.LoReft, Rank = 4, Layers = [0, 1, 2, 3, 4], Positions = PositionSpec.Parse("f1+l1") };
        using var interventions = InterventionSet.Create(config, model, seed: 42);
        var data = ReftDataset.FromPairs("inline", [new("Who is Lily?", "Lily is a little girl.", 1)], tokenizer, maxLength: 64);
        var trainer = new ReftTrainer(model, interventions, data, new TrainingOptions { Epochs = 200, BatchSize = 1, LearningRate = 2e-2 });
        trainer.Train();

        interventions.Save(Path.Combine(runs, "lily"));
        var generator = new Generator(model, tokenizer, interventions);
        string text = string.Concat(generator.Generate("Who is Lily?", new GenerationOptions { Temperature = 0, MaxTokens = 32 }));

        Assert.That(trainer.Losses[^1], Is.LessThan(trainer.Losses[0] / 4));
        Assert.That(text, Does.StartWith("Who is Lily? Lily is a little girl."));
        using var loaded = InterventionSet.Load(Path.Combine(runs, "lily"), model);
        string again = string.Concat(new Generator(model, tokenizer, loaded).Generate("Who is Lily?", new GenerationOptions { Temperature = 0, MaxTokens = 32 }));
        Assert.That(again, Is.EqualTo(text), "a saved and loaded intervention generates the same text");
    }
}
