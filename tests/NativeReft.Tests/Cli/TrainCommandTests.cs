using System.Text.RegularExpressions;

namespace NativeReft.Tests.Cli;

public sealed partial class TrainCommandTests
{
    private static string[] Model => ["--model", TestData.Stories260K("stories260K.bin"), "--tokenizer", TestData.Stories260K("tok512.bin")];

    private static string Data(params string[] lines)
    {
        string path = Path.Combine(TestData.TempDirectory(), "data.jsonl");
        File.WriteAllLines(path, lines);
        return path;
    }

    // The CUDA backend runs the same task on the kernel emulator: every kernel, forward and backward, through the
    // CLI, 1,000 steps (about six minutes on two cores).
    [TestCase("cpu")]
    [TestCase("emu")]
    public void Memorisation_rank4_loreft_reproduces_chosen_15_word_responses_that_the_base_model_does_not(string device)
    {
        // pyreft's README shows a rank-4 LoReFT memorising a sentence; here three, on the 260K-parameter model,
        // from the README's own example file and command.
        string data = Path.Combine(TestData.ProjectRoot, "examples", "memorise.jsonl");
        Assert.That(File.ReadAllLines(data).Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("response").GetString()!.Split(' ').Length),
            Is.All.EqualTo(15), "15-word responses");
        string dir = Path.Combine(TestData.TempDirectory(), "run");
        string[] on = ["--device", device];
        var train = CliRunner.Run(["train", .. Model, .. on, "--data", data, "--out", dir, "--rank", "4", "--layers", "all",
            "--positions", "f1+l1", "--lr", "2e-2", "--epochs", "1000", "--batch-size", "3"]);
        Assert.That(train.ExitCode, Is.Zero, train.Error);
        Assert.That(File.Exists(Path.Combine(dir, "intervention.safetensors")) && File.Exists(Path.Combine(dir, "intervention.json")) && File.Exists(Path.Combine(dir, "loss.png")));

        var after = CliRunner.Run(["eval", .. Model, .. on, "--data", data, "--intervention", dir]);
        var before = CliRunner.Run(["eval", .. Model, .. on, "--data", data]);
        Assert.That(after.ExitCode, Is.Zero, after.Error);
        Assert.That(ExactMatches(after.Output), Is.EqualTo(3), after.Output);
        Assert.That(ExactMatches(before.Output), Is.Zero, before.Output);

        var generate = CliRunner.Run(["generate", .. Model, .. on, "--intervention", dir, "--prompt", "Who is Lily?", "--temperature", "0", "--max-tokens", "40"]);
        Assert.That(generate.Output, Does.StartWith("Who is Lily? Lily is a little girl. She likes to play with her red ball every day."));
    }

    [Test]
    public void A_malformed_jsonl_line_is_named_by_its_number()
    {
        string data = Data("""{"prompt": "a", "response": "b"}""", "", """{"prompt": "a", "response": """);
        var r = CliRunner.Run(["train", .. Model, "--data", data, "--out", TestData.TempDirectory()]);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Error, Does.Contain("data.jsonl:3").And.Contain("not valid JSON"));
    }

    [Test]
    public void A_line_without_prompt_and_response_is_named()
    {
        string data = Data("""{"question": "a", "answer": "b"}""");
        var r = CliRunner.Run(["train", .. Model, "--data", data, "--out", TestData.TempDirectory()]);
        Assert.That(r.Error, Does.Contain("data.jsonl:1").And.Contain("\"prompt\" and \"response\""));
    }

    [Test]
    public void An_empty_data_file_is_an_error()
    {
        var r = CliRunner.Run(["train", .. Model, "--data", Data("", "  "), "--out", TestData.TempDirectory()]);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Error, Does.Contain("no examples"));
    }

    [Test]
    public void A_prompt_longer_than_the_max_length_is_an_error_naming_its_line()
    {
        string data = Data("""{"prompt": "a", "response": "b"}""", """{"prompt": "Once upon a time there was a very long prompt", "response": "b"}""");
        var r = CliRunner.Run(["train", .. Model, "--data", data, "--out", TestData.TempDirectory(), "--max-length", "6"]);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Error, Does.Contain("data.jsonl:2").And.Contain("--max-length 6"));
    }

    [Test]
    public void Alpaca_records_train_and_long_responses_are_truncated_and_counted()
    {
        string data = Data(
            """{"instruction": "Name a color.", "input": "", "output": "Red is a color that many children like very much."}""",
            """{"instruction": "Say hi.", "input": "Tom", "output": "Hi."}""");
        string dir = Path.Combine(TestData.TempDirectory(), "run");
        var r = CliRunner.Run(["train", .. Model, "--data", data, "--out", dir, "--max-length", "16", "--epochs", "2"]);
        Assert.That(r.ExitCode, Is.Zero, r.Error);
        Assert.That(r.Error, Does.Contain("2 examples (1 truncated to --max-length 16)"));
    }

    [TestCase("--positions", "x7", "invalid positions 'x7'")]
    [TestCase("--positions", "f0+l0", "at least one position")]
    [TestCase("--layers", "1;9", "layer 9 does not exist")]
    [TestCase("--layers", "2;2", "listed twice")]
    [TestCase("--layers", "two", "invalid layers")]
    [TestCase("--rank", "65", "rank 65 is invalid")]
    [TestCase("--type", "lora", "unknown intervention type 'lora'")]
    [TestCase("--lr", "-1", "--lr")]
    [TestCase("--schedule", "step", "unknown --schedule")]
    public void Invalid_options_are_errors_that_name_them(string option, string value, string message)
    {
        var r = CliRunner.Run(["train", .. Model, "--data", Data("""{"prompt": "a", "response": "b"}"""), "--out", TestData.TempDirectory(), option, value]);
        Assert.That(r.ExitCode, Is.EqualTo(1), r.Error);
        Assert.That(r.Error, Does.Contain(message));
    }

    [Test]
    public void An_intervention_of_another_base_model_is_refused()
    {
        string dir = Path.Combine(TestData.TempDirectory(), "run");
        var train = CliRunner.Run(["train", .. Model, "--data", Data("""{"prompt": "a b", "response": "c"}"""), "--out", dir, "--epochs", "1"]);
        Assert.That(train.ExitCode, Is.Zero, train.Error);
        // A random model of exactly stories260K's shape: same dimension, another base model.
        string hfDir = TestData.TempDirectory();
        var shape = new NativeReft.Model.LlamaConfig { Dim = 64, HiddenDim = 172, Layers = 5, Heads = 8, KvHeads = 4, VocabSize = 512, MaxSeqLen = 512 };
        NativeReft.IO.Hf.HfModelWriter.Save(hfDir, shape, NativeReft.Tests.Model.TinyModels.Weights(shape, seed: 2), NativeReft.Tensors.DType.F32);
        var r = CliRunner.Run(["generate", "--model", hfDir, "--tokenizer", TestData.Stories260K("tok512.bin"), "--intervention", dir, "--prompt", "a b"]);
        Assert.That(r.ExitCode, Is.EqualTo(1));
        Assert.That(r.Error, Does.Contain("another base model"));
    }

    [Test]
    public void A_second_run_into_the_same_directory_needs_resume_and_resume_continues()
    {
        string data = Data("""{"prompt": "Who is Lily?", "response": "A girl."}""");
        string dir = Path.Combine(TestData.TempDirectory(), "run");
        string[] args = ["train", .. Model, "--data", data, "--out", dir, "--epochs", "3"];
        Assert.That(CliRunner.Run(args).ExitCode, Is.Zero);
        var again = CliRunner.Run(args);
        Assert.That(again.ExitCode, Is.EqualTo(1));
        Assert.That(again.Error, Does.Contain("--resume"));
        var resumed = CliRunner.Run([.. args[..^1], "6", "--resume"]);
        Assert.That(resumed.ExitCode, Is.EqualTo(1), "6 epochs is another run than 3: the options must match");
        Assert.That(resumed.Error, Does.Contain("other data or options"));
        Assert.That(CliRunner.Run([.. args, "--resume"]).Error, Does.Contain("resuming at step 3"));
    }

    [Test]
    public void Quickstart_changes_what_the_demo_model_says_and_saves_the_artifact()
    {
        string dir = Path.Combine(TestData.TempDirectory(), "qs");
        var r = CliRunner.Run("quickstart", "--out", dir);
        Assert.That(r.ExitCode, Is.Zero, r.Error);
        Assert.That(r.Output, Does.Contain("Before training:\n  Once upon a time, -> NativeReft ran a whole LLaMA"));
        Assert.That(r.Output, Does.Contain("After training").And.Contain("  Once upon a time, -> grouped-query attention, SwiGLU and logits, with no model file at all."));
        Assert.That(File.Exists(Path.Combine(dir, "intervention.safetensors")) && File.Exists(Path.Combine(dir, "loss.png")));
    }

    private static int ExactMatches(string output)
    {
        var m = ExactMatchPattern().Match(output);
        Assert.That(m.Success, output);
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [GeneratedRegex(@"exact match (\d+)/")]
    private static partial Regex ExactMatchPattern();
}
