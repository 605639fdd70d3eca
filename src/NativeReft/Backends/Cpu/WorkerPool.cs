namespace NativeReft.Backends.Cpu;

/// <summary>
/// Persistent worker threads for the CPU backend's parallel loops. A decode step runs ~50 small parallel ops;
/// handing each to the thread pool (Parallel.For) costs microseconds of wake-up per op, more than the op itself
/// on small models. Workers here spin briefly waiting for the next job (OpenMP's habit) and only then sleep.
/// </summary>
internal sealed class WorkerPool : IDisposable
{
    private const int SpinIterationsBeforeSleep = 2000; // SpinWait iterations: tens of microseconds

    private readonly Thread[] workers;
    private readonly object gate = new();
    private Job? current;
    private int sleepers;
    private volatile bool disposed;

    /// <summary>Starts <paramref name="threads"/> - 1 workers; the calling thread is the last one.</summary>
    public WorkerPool(int threads)
    {
        workers = new Thread[Math.Max(0, threads - 1)];
        for (int i = 0; i < workers.Length; i++)
        {
            workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"NativeReft CPU worker {i + 1}" };
            workers[i].Start();
        }
    }

    /// <summary>Threads that run parts, the caller's included.</summary>
    public int Threads => workers.Length + 1;

    /// <summary>Runs body(0) .. body(parts - 1), each exactly once, on all threads; returns when all are done.</summary>
    public void For(int parts, Action<int> body)
    {
        if (workers.Length == 0 || parts == 1)
        {
            for (int p = 0; p < parts; p++)
            {
                body(p);
            }
            return;
        }
        // A job object per call: a worker still finishing an old job only ever touches that job's counters.
        var job = new Job(body, parts);
        Interlocked.Exchange(ref current, job); // full fence, so the read of sleepers below is not reordered before it
        if (Volatile.Read(ref sleepers) > 0)
        {
            lock (gate)
            {
                Monitor.PulseAll(gate);
            }
        }
        job.RunParts();
        var spin = new SpinWait();
        while (Volatile.Read(ref job.Remaining) > 0)
        {
            spin.SpinOnce(sleep1Threshold: -1);
        }
        job.ThrowIfFailed();
    }

    private void WorkerLoop()
    {
        Job? last = null;
        while (!disposed)
        {
            var spin = new SpinWait();
            Job? job;
            while ((job = Volatile.Read(ref current)) == last && !disposed)
            {
                if (spin.Count < SpinIterationsBeforeSleep)
                {
                    spin.SpinOnce(sleep1Threshold: -1);
                    continue;
                }
                lock (gate)
                {
                    Interlocked.Increment(ref sleepers);
                    while (Volatile.Read(ref current) == last && !disposed)
                    {
                        Monitor.Wait(gate);
                    }
                    Interlocked.Decrement(ref sleepers);
                }
            }
            if (job is not null && job != last)
            {
                last = job;
                job.RunParts();
            }
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        disposed = true;
        lock (gate)
        {
            Monitor.PulseAll(gate);
        }
    }

    private sealed class Job(Action<int> body, int parts)
    {
        private readonly int parts = parts;
        private int next = -1;
        public int Remaining = parts;
        private Exception? failure;

        public void RunParts()
        {
            int p;
            while ((p = Interlocked.Increment(ref next)) < parts)
            {
                try
                {
                    body(p);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref failure, e, null);
                }
                Interlocked.Decrement(ref Remaining);
            }
        }

        public void ThrowIfFailed()
        {
            if (failure is not null)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(failure);
            }
        }
    }
}
