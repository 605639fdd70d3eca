using NativeReft.Training;

namespace NativeReft.Tests.Training;

/// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; posts to the thread pool).</summary>
internal sealed class SynchronousProgress(Action<StepReport> report) : IProgress<StepReport>
{
    public void Report(StepReport value) => report(value);
}
