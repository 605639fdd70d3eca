using System.Reflection;
using NUnit.Framework.Api;
using NUnit.Framework.Interfaces;
using NUnit.Framework.Internal;

namespace NativeReft.GpuRunner;

/// <summary>
/// Runs this assembly's NUnit tests of one category (default "Gpu") with NUnit's built-in runner, printing each
/// result and a closing "N passed, N failed, N skipped" line; exit code 1 when any test failed or none ran.
/// Usage: NativeReft.GpuRunner [--category NAME] [--test REGEX] [--exclude REGEX] (--test: only the tests whose full
/// name, class and case included, matches, e.g. the tensor-core attention cases under compute-sanitizer; --exclude:
/// all but those, e.g. to keep a kernel that faults, which poisons the CUDA context, from failing every later test).
/// </summary>
internal static class Program
{
    public static int Main(string[] args)
    {
        string category = "Gpu";
        string? testPattern = null;
        string? excludePattern = null;
        for (int i = 0; i < args.Length; i += 2)
        {
            switch (args[i])
            {
                case "--category" when i + 1 < args.Length:
                    category = args[i + 1];
                    break;
                case "--test" when i + 1 < args.Length:
                    testPattern = args[i + 1];
                    break;
                case "--exclude" when i + 1 < args.Length:
                    excludePattern = args[i + 1];
                    break;
                default:
                    Console.Error.WriteLine($"usage: NativeReft.GpuRunner [--category NAME] [--test REGEX] [--exclude REGEX]; got '{string.Join(' ', args)}'");
                    return 2;
            }
        }

        var runner = new NUnitTestAssemblyRunner(new DefaultTestAssemblyBuilder());
        // By name, not by Assembly: NUnit names a loaded assembly after its file, and in a single-file bundle it
        // has none (Assembly.Location is empty). Loading by name finds the assembly already loaded.
        runner.Load(typeof(Program).Assembly.GetName().Name!, new Dictionary<string, object>());
        var listener = new ConsoleListener(Console.Out);
        string filter = $"<cat>{System.Security.SecurityElement.Escape(category)}</cat>";
        if (testPattern is not null)
        {
            filter = $"<and>{filter}<test re=\"1\">{System.Security.SecurityElement.Escape(testPattern)}</test></and>";
        }
        if (excludePattern is not null)
        {
            filter = $"<and>{filter}<not><test re=\"1\">{System.Security.SecurityElement.Escape(excludePattern)}</test></not></and>";
        }
        filter = $"<filter>{filter}</filter>";
        runner.Run(listener, TestFilter.FromXml(filter));

        Console.WriteLine();
        foreach (string failure in listener.Failures)
        {
            Console.WriteLine(failure);
        }
        Console.WriteLine($"{listener.Passed} passed, {listener.Failed} failed, {listener.Skipped} skipped");
        return listener.Failed > 0 || listener.Passed + listener.Failed == 0 ? 1 : 0;
    }

    /// <summary>
    /// Prints one line per test case as it finishes, and counts. Writes to the stdout it was given: NUnit redirects
    /// Console.Out while tests run, to capture their output.
    /// </summary>
    private sealed class ConsoleListener(TextWriter stdout) : ITestListener
    {
        public int Passed { get; private set; }

        public int Failed { get; private set; }

        public int Skipped { get; private set; }

        public List<string> Failures { get; } = [];

        public void TestStarted(ITest test)
        {
        }

        public void TestFinished(ITestResult result)
        {
            if (result.Test.IsSuite)
            {
                // A fixture whose one-time setup failed fails its cases without running them; they are
                // reported one by one too, so only the fixture's own message is added here.
                if (result.ResultState.Status == TestStatus.Failed && result.ResultState.Site is FailureSite.SetUp or FailureSite.TearDown)
                {
                    Failures.Add($"FIXTURE {result.FullName}: {result.Message}");
                }
                return;
            }
            string seconds = $"{result.Duration:F3}s";
            switch (result.ResultState.Status)
            {
                case TestStatus.Passed:
                    Passed++;
                    stdout.WriteLine($"PASS {result.FullName} ({seconds})");
                    break;
                case TestStatus.Failed:
                    Failed++;
                    stdout.WriteLine($"FAIL {result.FullName} ({seconds})");
                    Failures.Add($"FAIL {result.FullName}\n  {result.Message?.Replace("\n", "\n  ", StringComparison.Ordinal)}\n  {result.StackTrace?.Replace("\n", "\n  ", StringComparison.Ordinal)}");
                    break;
                default:
                    Skipped++;
                    stdout.WriteLine($"SKIP {result.FullName}: {result.Message}");
                    break;
            }
        }

        public void TestOutput(TestOutput output) => stdout.Write(output.Text);

        public void SendMessage(TestMessage message)
        {
        }
    }
}
