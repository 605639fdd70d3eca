namespace NativeReft.Cuda;

/// <summary>
/// Device time per op, from timing events recorded on the stream around each op of a <see cref="CudaBackend"/>
/// (set <see cref="CudaBackend.Profiler"/>): a step-time breakdown without synchronizing inside the step. Ops
/// called from inside another op count toward the outer one. Events are reused, so a profiled step allocates
/// nothing once warm.
/// </summary>
public sealed class OpProfiler : IDisposable
{
    private readonly IDeviceRuntime runtime;
    private readonly Stack<TimingEvent> free = new();
    private readonly List<(string Name, TimingEvent Start, TimingEvent End)> pending = [];
    private readonly Dictionary<string, OpTime> totals = [];
    private int depth;

    /// <summary>A profiler for ops on <paramref name="runtime"/>.</summary>
    public OpProfiler(IDeviceRuntime runtime) => this.runtime = runtime ?? throw new ArgumentNullException(nameof(runtime));

    /// <summary>Milliseconds and calls per op name, over what <see cref="Collect"/> has gathered.</summary>
    public IReadOnlyDictionary<string, OpTime> Totals => totals;

    /// <summary>Waits for the ops recorded so far and adds their times to <see cref="Totals"/>.</summary>
    public void Collect()
    {
        foreach (var (name, start, end) in pending)
        {
            end.Synchronize();
            var time = totals.GetValueOrDefault(name);
            totals[name] = new OpTime(time.Milliseconds + end.ElapsedMillisecondsSince(start), time.Calls + 1);
            free.Push(start);
            free.Push(end);
        }
        pending.Clear();
    }

    /// <summary>Forgets the totals (after a warm-up).</summary>
    public void Reset()
    {
        Collect();
        totals.Clear();
    }

    /// <summary>Releases the events.</summary>
    public void Dispose()
    {
        foreach (var e in free.Concat(pending.SelectMany(p => new[] { p.Start, p.End })))
        {
            e.Dispose();
        }
        free.Clear();
        pending.Clear();
    }

    internal Scope Begin(string name, DeviceStream stream)
    {
        if (depth++ > 0)
        {
            return new Scope(this, name, null, stream);
        }
        var start = Rent();
        start.Record(stream);
        return new Scope(this, name, start, stream);
    }

    private void End(string name, TimingEvent? start, DeviceStream stream)
    {
        depth--;
        if (start is null)
        {
            return;
        }
        var end = Rent();
        end.Record(stream);
        pending.Add((name, start, end));
    }

    private TimingEvent Rent() => free.Count > 0 ? free.Pop() : runtime.CreateTimingEvent();

    /// <summary>Ends the op when disposed (a no-op default when no profiler is set).</summary>
    internal readonly struct Scope(OpProfiler? profiler, string name, TimingEvent? start, DeviceStream? stream) : IDisposable
    {
        public void Dispose() => profiler?.End(name, start, stream!);
    }
}

/// <summary>Device time of one op name.</summary>
/// <param name="Milliseconds">Total milliseconds.</param>
/// <param name="Calls">Times it ran.</param>
public readonly record struct OpTime(double Milliseconds, int Calls);
