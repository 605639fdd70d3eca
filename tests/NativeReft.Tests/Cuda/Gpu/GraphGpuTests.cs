using NativeReft.Cuda;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Cuda.Gpu;

[Category("Gpu")]
public sealed class GraphGpuTests
{
    [Test]
    public void A_captured_graph_replays_its_kernels()
    {
        var runtime = Gpu.Runtime;
        using var kernels = new ElementwiseKernels(runtime);
        using var stream = runtime.CreateStream();
        const int n = 4099;
        var x = Gpu.RandomFloats(4, n);
        using var xd = runtime.Upload<float>(x);
        using var y = runtime.Allocate<float>(n);
        using var ones = runtime.Allocate<float>(n);
        y.Clear();
        ones.Clear();

        using var graph = runtime.Capture(stream, () =>
        {
            kernels.Fill(ones, 1f, stream);
            kernels.Axpy(y, 0.5f, xd, stream);
            kernels.Axpy(y, 2f, ones, stream);
        });
        stream.Synchronize();
        Assert.That(y.ToArray(), Is.All.Zero, "capturing records the work without running it");
        Assert.That(graph.Nodes, Is.EqualTo(3), "one node per kernel launch");

        using var start = runtime.CreateTimingEvent();
        using var end = runtime.CreateTimingEvent();
        start.Record(stream);
        for (int i = 0; i < 3; i++)
        {
            graph.Launch(stream);
        }
        end.Record(stream);
        end.Synchronize();
        Assert.That(ones.ToArray(), Is.All.EqualTo(1f));
        new Tolerance(1e-6, 1e-6).AssertClose(y.ToArray(), x.Select(v => 3 * (0.5 * v + 2)).ToArray(), "y after three replays");
        Assert.That(end.ElapsedMillisecondsSince(start), Is.GreaterThan(0f));
        TestContext.Progress.WriteLine($"3 graph replays (3 kernels each, n = {n}): {end.ElapsedMillisecondsSince(start) * 1000:F1} us on {runtime.Properties.Name}");
    }

    [Test]
    public void A_failure_while_capturing_ends_the_capture_and_leaves_the_stream_usable()
    {
        var runtime = Gpu.Runtime;
        using var kernels = new ElementwiseKernels(runtime);
        using var stream = runtime.CreateStream();
        using var y = runtime.Allocate<float>(16);
        Assert.Throws<InvalidOperationException>(() => runtime.Capture(stream, () =>
        {
            kernels.Fill(y, 1f, stream);
            throw new InvalidOperationException("planted");
        }));
        kernels.Fill(y, 4f, stream);
        stream.Synchronize();
        Assert.That(y.ToArray(), Is.All.EqualTo(4f));
    }

    [Test]
    public void The_default_stream_cannot_be_captured()
    {
        var runtime = Gpu.Runtime;
        Assert.Throws<ArgumentException>(() => runtime.Capture(runtime.DefaultStream, () => { }));
    }
}
