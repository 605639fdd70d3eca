namespace NativeReft.Tests;

/// <summary>
/// Paths to the shared test data (../shared/data relative to the project root). Outside CI a missing file
/// skips the test with a reason; with CI=true it fails, so CI can never pass by skipping.
/// </summary>
internal static class TestData
{
    private static readonly Lazy<string> Root = new(FindProjectRoot);

    public static string ProjectRoot => Root.Value;

    /// <summary>The variable that points the tests at the stories260K folder elsewhere (the GPU bundle carries a copy).</summary>
    public const string Stories260KVariable = "NATIVEREFT_STORIES260K";

    public static string Stories260KDirectory => Environment.GetEnvironmentVariable(Stories260KVariable) is { Length: > 0 } dir
        ? Path.GetFullPath(dir)
        : Path.GetFullPath(Path.Combine(ProjectRoot, "..", "shared", "data", "stories260K"));

    /// <summary>The path of a stories260K file, or skip/fail (see class comment) when it is missing.</summary>
    public static string Stories260K(string file)
    {
        string path = Path.Combine(Stories260KDirectory, file);
        if (!File.Exists(path))
        {
            string reason = $"test data {path} is missing (../shared/data/stories260K beside the project root)";
            if (string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase))
            {
                Assert.Fail(reason);
            }
            Assert.Ignore(reason);
        }
        return path;
    }

    /// <summary>A fresh empty directory under the test's temp folder.</summary>
    public static string TempDirectory()
    {
        string dir = Path.Combine(Path.GetTempPath(), "nativereft-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    private static string FindProjectRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "NativeReft.sln")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException("NativeReft.sln not found above " + AppContext.BaseDirectory);
    }
}
