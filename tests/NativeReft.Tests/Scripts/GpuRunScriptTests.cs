using System.Diagnostics;
using System.Runtime.Versioning;

namespace NativeReft.Tests.Scripts;

/// <summary>
/// scripts/gpu-run.sh is the one prepared run of a GPU lease, and a lease has no time for a second try at a script
/// bug. These tests run it here against a stand-in bundle (shell scripts printing what the real programs print
/// where the script looks): every phase in order, the two files a device call brings back, the time budget that
/// cuts a step and skips the rest with the command to run them, a failure that does not stop the steps after it.
/// </summary>
[TestFixture]
[NonParallelizable] // the budget test times a step against the wall clock
[SupportedOSPlatform("linux")]
public sealed class GpuRunScriptTests
{
    private const string FakeCli = """
        #!/usr/bin/env bash
        sleep "${FAKE_SLEEP:-0}"
        case $1 in
          doctor) echo "every kernel compiled and loaded" ;;
          bench)
            echo "step 1/10: 249.5 ms"
            echo "step 250.0 ms (median of 10; fastest 249.0, slowest 251.0), 16,384 tokens/s"
            echo "MFU 44.6% of 989 TFLOP/s bf16 (4 N = 27.0 GFLOP per token)"
            echo "peak device memory 30.00 GiB"
            [[ " $* " == *" --graph on "* ]] && echo "step replayed as one CUDA graph"
            [[ " $* " == *" --json "* ]] && echo '{"engine": "nativereft", "shape": "llama2-7b", "batch": 8, "seq": 512, "tokens_per_s": 16384.0, "step_ms": 250.0, "peak_gib": 30.0}'
            ;;
          *) echo "$1: exact match 5/5, achieved tok/s: 1000" ;;
        esac
        exit "${FAKE_CLI_EXIT:-0}"
        """;

    private const string FakeRunner = """
        #!/usr/bin/env bash
        echo "12 passed, ${FAKE_RUNNER_EXIT:-0} failed, 0 skipped"
        exit "${FAKE_RUNNER_EXIT:-0}"
        """;

    private const string FakeBench = """
        #!/usr/bin/env bash
        printf '| Method | Shape | Mean |\n|---|---|---|\n| Perf_DeviceCopy | %s | 1 ms |\n\n' "$NATIVEREFT_BENCH_SHAPES"
        """;

    private string bundle = null!;
    private string outFolder = null!;

    [OneTimeSetUp]
    public void RequireShell()
    {
        if (!OperatingSystem.IsLinux())
        {
            Assert.Ignore("gpu-run.sh runs on the Linux GPU machine; this is not Linux");
        }
        foreach (string tool in new[] { "bash", "timeout", "tar", "python3" })
        {
            if (!OnPath(tool))
            {
                Assert.Ignore($"{tool} is not on PATH: gpu-run.sh needs it (it runs on Linux)");
            }
        }
    }

    [SetUp]
    public void MakeBundle()
    {
        string root = TestData.TempDirectory();
        bundle = Path.Combine(root, "bundle");
        outFolder = Path.Combine(root, "out");
        Directory.CreateDirectory(Path.Combine(bundle, "data", "stories260K"));
        Write("nativereft", FakeCli);
        Write("NativeReft.GpuRunner", FakeRunner);
        Write("NativeReft.Bench", FakeBench);
        foreach (string script in new[] { "gpu-common.sh", "gpu-libraries.sh", "gpu-kernel-bench.sh" })
        {
            File.Copy(Path.Combine(TestData.ProjectRoot, "scripts", script), Path.Combine(bundle, script));
        }
        File.WriteAllText(Path.Combine(bundle, "memorise.jsonl"), "");
    }

    [Test]
    public void EveryPhaseRunsInOrderAndComesBackAsTwoFiles()
    {
        var (exit, output) = Run(budget: 300);

        Assert.That(exit, Is.EqualTo(0), output);
        string[] steps = ["doctor", "train llama2-7b + peers", "GPU tests, tc", "GPU tests", "kernel suite", "train",
            "eval", "generate", "bench generate", "bench train", "direct attention", "graph off, tinyllama-1.1b", "graph on, tinyllama-1.1b"];
        string summary = File.ReadAllText(Path.Combine(outFolder, "summary.txt"));
        var table = summary.Split('\n').Where(l => l.Contains(" pass ")).Select(l => l[..28].Trim()).ToArray();
        Assert.That(table, Is.EqualTo(steps), summary);
        Assert.That(Directory.GetFiles(outFolder).Select(Path.GetFileName), Is.EquivalentTo(new[] { "summary.txt", "gpu-logs.tgz" }));
        Assert.That(summary, Does.Contain("MFU 44.6%").And.Contain("peak device memory 30.00 GiB"), "the 7B step's figures");
        Assert.That(summary, Does.Not.Contain("step 1/10"), "progress lines stay in the log");
        Assert.That(summary, Does.Contain("== peers: llama2-7b"), "the peers' table");
        Assert.That(summary, Does.Contain("| Perf_DeviceCopy | llama2-7b |"), "the kernel suite at the 7B shape only");
        Assert.That(summary, Does.Contain("step replayed as one CUDA graph"));
        Assert.That(summary, Does.Not.Contain("not finished in time"));
        Assert.That(ArchivedLogs(), Does.Contain("gpu-logs/peers.jsonl").And.Contain("gpu-logs/train-graph-on.log"));
    }

    [Test]
    public void TheBudgetCutsAStepAndLeavesTheRestForARerun()
    {
        var (exit, output) = Run(budget: 15, environment: [("FAKE_SLEEP", "60")], phases: ["doctor", "tests"]);

        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Match(@"doctor\s+CUT at its \d+ s limit"));
        Assert.That(output, Does.Match(@"GPU tests, tc\s+skipped \(out of time\)"));
        Assert.That(output, Does.Contain("to run them: NATIVEREFT_GPU_OUT=$OUT bash scripts/gpu-run.sh doctor tests"));
        Assert.That(File.ReadAllText(Path.Combine(outFolder, "summary.txt")), Does.Contain("not finished in time: doctor tests"));
    }

    [Test]
    public void AFailedStepIsReportedAndTheNextStepsStillRun()
    {
        var (exit, output) = Run(budget: 300, environment: [("FAKE_RUNNER_EXIT", "1")], phases: ["tests", "graph"]);

        Assert.That(exit, Is.EqualTo(1), output);
        Assert.That(output, Does.Match(@"GPU tests\s+FAIL \(exit 1\)"));
        Assert.That(output, Does.Match(@"graph on, tinyllama-1.1b\s+pass"));
    }

    [Test]
    public void AnUnknownPhaseStopsBeforeAnythingRuns()
    {
        var (exit, output) = Run(budget: 300, phases: ["doctor", "benchmarks"]);

        Assert.That(exit, Is.EqualTo(2));
        Assert.That(output, Does.Contain("unknown phase 'benchmarks'").And.Contain("doctor train-7b tests kernels"));
        Assert.That(Directory.Exists(outFolder), Is.False, "nothing ran");
    }

    private (int Exit, string Output) Run(int budget, (string Name, string Value)[]? environment = null, string[]? phases = null)
    {
        var start = new ProcessStartInfo("bash") { WorkingDirectory = TestData.ProjectRoot };
        start.ArgumentList.Add(Path.Combine(TestData.ProjectRoot, "scripts", "gpu-run.sh"));
        foreach (string phase in phases ?? [])
        {
            start.ArgumentList.Add(phase);
        }
        start.Environment["NATIVEREFT_BUNDLE"] = bundle;
        start.Environment["NATIVEREFT_GPU_OUT"] = outFolder;
        start.Environment["NATIVEREFT_GPU_SECONDS"] = budget.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["BENCH_PEERS"] = "none"; // PyTorch is on the GPU machine, not here
        start.Environment.Remove("NATIVEREFT_GPU_LOGS");
        foreach (var (name, value) in environment ?? [])
        {
            start.Environment[name] = value;
        }
        var (exit, stdout, stderr) = ExternalProcess.Run(start);
        return (exit, stdout + stderr);
    }

    private string ArchivedLogs() => ExternalProcess.Run(new ProcessStartInfo("tar", ["-tzf", Path.Combine(outFolder, "gpu-logs.tgz")])).Stdout;

    private void Write(string name, string text)
    {
        string path = Path.Combine(bundle, name);
        File.WriteAllText(path, text.ReplaceLineEndings("\n") + "\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    private static bool OnPath(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Any(dir => File.Exists(Path.Combine(dir, tool)));
}
