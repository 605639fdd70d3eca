namespace NativeReft.Tests.Cli;

public sealed class GenerateCommandTests
{
    [Test]
    public void Greedy_stories260K_bin_prints_the_documented_text()
    {
        var (code, output, error) = CliRunner.Run("generate",
            "--model", TestData.Stories260K("stories260K.bin"), "--tokenizer", TestData.Stories260K("tok512.bin"),
            "--temperature", "0", "--max-tokens", "256");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Is.EqualTo(File.ReadAllText(TestData.Stories260K("greedy_t0.txt"))));
        Assert.That(error, Does.Contain("achieved tok/s"));
    }

    [Test]
    public void Greedy_on_the_emulated_cuda_backend_follows_the_documented_text()
    {
        var (code, output, error) = CliRunner.Run("generate", "--device", "emu",
            "--model", TestData.Stories260K("stories260K.bin"), "--tokenizer", TestData.Stories260K("tok512.bin"),
            "--temperature", "0", "--max-tokens", "256");
        Assert.That(code, Is.Zero, error);
        Assert.That(error, Does.Contain("emu-bf16"));
        // bf16 weights and activations: greedy decoding follows the f32 text until two candidates' logits are
        // within bf16 rounding of each other; measured, the first 530 of 566 characters agree.
        string documented = File.ReadAllText(TestData.Stories260K("greedy_t0.txt"));
        int common = 0;
        while (common < Math.Min(output.Length, documented.Length) && output[common] == documented[common])
        {
            common++;
        }
        Assert.That(common, Is.GreaterThanOrEqualTo(400), $"the first {common} characters agree:\n{output}");
    }

    [Test]
    public void An_unknown_device_is_named_with_the_choices()
    {
        var (code, _, error) = CliRunner.Run("generate", "--device", "tpu");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("unknown device 'tpu'").And.Contain("cuda|emu|cpu"));
    }

    [Test]
    public void Device_cuda_without_a_gpu_says_why_and_what_to_use_instead()
    {
        if (NativeReft.Cuda.ComputeDevices.GpuAvailable(out _))
        {
            Assert.Ignore("this machine has a usable GPU, so --device cuda works here");
        }
        var (code, _, error) = CliRunner.Run("generate", "--device", "cuda");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.StartWith("error: --device cuda:").And.Contain("--device cpu"));
    }

    [Test]
    public void Greedy_stories260K_gguf_with_its_embedded_tokenizer_prints_the_documented_text()
    {
        var (code, output, error) = CliRunner.Run("generate",
            "--model", TestData.Stories260K("stories260K.gguf"), "--temperature", "0", "--max-tokens", "256");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Is.EqualTo(File.ReadAllText(TestData.Stories260K("greedy_t0.txt"))));
    }

    [Test]
    public void Without_a_model_the_built_in_demo_model_recites_its_text()
    {
        var (code, output, error) = CliRunner.Run("generate", "--temperature", "0");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Is.EqualTo(NativeReft.Model.DemoModel.Text + Environment.NewLine));
    }

    [Test]
    public void A_prompt_is_echoed_and_continued()
    {
        var (code, output, error) = CliRunner.Run("generate",
            "--model", TestData.Stories260K("stories260K.bin"), "--tokenizer", TestData.Stories260K("tok512.bin"),
            "--prompt", "Lily saw a dog", "--temperature", "0", "--max-tokens", "20");
        Assert.That(code, Is.Zero, error);
        Assert.That(output, Does.StartWith("Lily saw a dog"));
        Assert.That(output.Length, Is.GreaterThan("Lily saw a dog".Length + 10), "it continued the prompt");
    }

    [Test]
    public void Sampling_with_a_seed_is_reproducible_and_differs_across_seeds()
    {
        string[] Args(string seed) => ["generate", "--model", TestData.Stories260K("stories260K.bin"),
            "--tokenizer", TestData.Stories260K("tok512.bin"), "--temperature", "1", "--top-p", "0.9", "--seed", seed, "--max-tokens", "64"];
        var first = CliRunner.Run(Args("7"));
        var again = CliRunner.Run(Args("7"));
        var other = CliRunner.Run(Args("8"));
        Assert.That(first.ExitCode, Is.Zero, first.Error);
        Assert.That(again.Output, Is.EqualTo(first.Output));
        Assert.That(other.Output, Is.Not.EqualTo(first.Output));
    }

    [Test]
    public void An_unknown_option_is_an_error_that_names_it()
    {
        var (code, _, error) = CliRunner.Run("generate", "--temprature", "0");
        Assert.That(code, Is.Not.Zero);
        Assert.That(error, Does.Contain("--temprature"));
    }

    [Test]
    public void A_missing_model_file_is_a_one_line_error_without_a_stack_trace()
    {
        var (code, _, error) = CliRunner.Run("generate", "--model", "/nonexistent/model.bin");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("/nonexistent/model.bin").And.Contain("no such file"));
        Assert.That(error, Does.Not.Contain("   at "), "no stack trace for a user error");
    }

    [Test]
    public void A_bin_model_without_a_tokenizer_says_to_pass_one()
    {
        var (code, _, error) = CliRunner.Run("generate", "--model", TestData.Stories260K("stories260K.bin"));
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("--tokenizer"));
    }

    [Test]
    public void A_tokenizer_of_another_vocabulary_is_rejected()
    {
        string dir = TestData.TempDirectory();
        string tokenizer = Path.Combine(dir, "tok3.bin");
        // A valid llama2.c tokenizer with only 3 tokens: <unk>, <s>, </s>.
        using (var w = new BinaryWriter(File.Create(tokenizer)))
        {
            w.Write(5);
            foreach (string piece in new[] { "<unk>", "<s>", "</s>" })
            {
                w.Write(0f);
                w.Write(piece.Length);
                w.Write(System.Text.Encoding.UTF8.GetBytes(piece));
            }
        }
        var (code, _, error) = CliRunner.Run("generate", "--model", TestData.Stories260K("stories260K.bin"), "--tokenizer", tokenizer);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("tok3.bin").And.Contain("3 tokens").And.Contain("512"));
    }

    [TestCase("--max-tokens", "0", "--max-tokens")]
    [TestCase("--temperature", "-1", "--temperature")]
    [TestCase("--top-p", "1.5", "--top-p")]
    public void Out_of_range_options_are_errors(string option, string value, string named)
    {
        var (code, _, error) = CliRunner.Run("generate", option, value);
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain(named));
    }

    [Test]
    public void A_prompt_longer_than_max_tokens_is_an_error()
    {
        var (code, _, error) = CliRunner.Run("generate", "--model", TestData.Stories260K("stories260K.bin"),
            "--tokenizer", TestData.Stories260K("tok512.bin"), "--prompt", "Once upon a time there was a cat", "--max-tokens", "3");
        Assert.That(code, Is.EqualTo(1));
        Assert.That(error, Does.Contain("prompt").And.Contain("max tokens"));
    }

    [TestCase("generate", "--model --tokenizer --intervention --prompt --max-tokens --temperature --top-p --seed --threads")]
    [TestCase("train", "--model --tokenizer --data --out --type --rank --layers --positions --untied --activation --lr --epochs --batch-size --grad-accum --max-length --dropout --weight-decay --warmup-ratio --schedule --max-grad-norm --seed --save-every --resume --threads")]
    [TestCase("eval", "--model --tokenizer --intervention --data --max-length --batch-size --show")]
    [TestCase("quickstart", "--out")]
    [TestCase("doctor", "--arch")]
    public void Help_describes_every_option(string command, string options)
    {
        var (code, output, _) = CliRunner.Run(command, "--help");
        Assert.That(code, Is.Zero);
        foreach (string option in options.Split(' '))
        {
            Assert.That(output, Does.Contain(option), $"{command} --help");
        }
    }
}
