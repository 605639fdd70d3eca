using NativeReft.Backends.Cpu;

namespace NativeReft.Tests.Backends;

public sealed class WorkerPoolTests
{
    [Test]
    public void Every_part_runs_exactly_once_across_many_back_to_back_jobs()
    {
        using var pool = new WorkerPool(threads: 3);
        for (int job = 0; job < 2000; job++)
        {
            int parts = 1 + job % 7;
            var runs = new int[parts];
            pool.For(parts, p => Interlocked.Increment(ref runs[p]));
            Assert.That(runs, Is.All.EqualTo(1), $"job {job}");
        }
    }

    [Test]
    public void Workers_that_fell_asleep_wake_for_the_next_job()
    {
        using var pool = new WorkerPool(threads: 2);
        Thread.Sleep(50); // long past the spin phase
        var threads = new System.Collections.Concurrent.ConcurrentDictionary<int, bool>();
        pool.For(64, _ =>
        {
            threads[Environment.CurrentManagedThreadId] = true;
            Thread.SpinWait(20000);
        });
        Assert.That(threads, Has.Count.EqualTo(2), "both threads took parts");
    }

    [Test]
    public void An_exception_in_a_part_reaches_the_caller()
    {
        using var pool = new WorkerPool(threads: 2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.For(8, p =>
        {
            if (p == 5)
            {
                throw new InvalidOperationException("part 5 failed");
            }
        }))!;
        Assert.That(e.Message, Is.EqualTo("part 5 failed"));
        int done = 0;
        pool.For(4, _ => Interlocked.Increment(ref done));
        Assert.That(done, Is.EqualTo(4), "the pool still works after a failed job");
    }
}
