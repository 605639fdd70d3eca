using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;

namespace NativeReft.GpuRunner;

/// <summary>
/// Checks, on any machine, that the trimmed single-file runner still does what the GPU tests rely on: fixtures
/// with one-time setup, test case sources, the constraints they use, Tolerance, skipping with a reason.
/// scripts/gpu-bundle.sh runs these (--category RunnerSelfTest) before it calls a bundle good.
/// </summary>
[Category("RunnerSelfTest")]
public sealed class RunnerSelfTests
{
    private static readonly int[] Sizes = [1, 7];

    private float[] values = null!;

    [OneTimeSetUp]
    public void Prepare() => values = [2.5f, 2.5f, 2.5f];

    [TestCaseSource(nameof(Sizes))]
    public void Case_sources_and_collection_constraints(int n)
    {
        Assert.That(values, Is.All.EqualTo(2.5f));
        Assert.That(new float[n], Is.All.Zero);
        Assert.That(Enumerable.Range(0, n).Select(i => (ushort)i), Is.EqualTo(Enumerable.Range(0, n).Select(i => (ushort)i).ToArray()));
        Assert.That(new float[n], Has.Length.EqualTo(n));
    }

    [TestCase(1, 2, 3)]
    public void Numeric_and_string_constraints(int a, int b, int c)
    {
        Assert.That(a + b, Is.EqualTo(c));
        Assert.That(0.5f, Is.GreaterThan(0f));
        Assert.That(5L, Is.Positive.And.LessThanOrEqualTo(6L));
        Assert.That("out of GPU memory: requested", Does.StartWith("out of GPU").And.Contain("requested"));
        Assert.That(new[] { "a", "b" }, Is.EquivalentTo(new[] { "b", "a" }));
    }

    [Test]
    public void Exceptions_and_tolerances()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new DeviceView<float>(new DevicePointer(16), 4).Cast<BFloat16>().Slice(1, 9))!;
        Assert.That(e.Message, Does.Contain("slice"));
        new Tolerance(1e-6, 1e-6).AssertClose([1f, 2f], [1.0, 2.0], "tolerance");
        Assert.That(BFloat16.FromFloat(1f).Bits, Is.EqualTo((ushort)0x3f80));
        TestContext.Progress.WriteLine("progress output reaches the console");
    }

    [Test]
    public void Skipping_reports_its_reason() => Assert.Ignore("skipped on purpose: the runner reports reasons");
}
