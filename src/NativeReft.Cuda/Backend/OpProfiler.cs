namespace NativeReft.Cuda;

/// <summary>
/// Device time per op, from timing events recorded on the stream around each op of a <see cref="CudaBackend"/>
/// (set <see cref="CudaBackend.Profiler"/>): a step-time breakdown without synchronizing inside the step, with the
/// work each op must do (<see cref="OpWork"/>) summed beside its time. Ops called from inside another op count
/// toward the outer one. Events are reused, so a profiled step allocates nothing once warm.
/// </summary>
public sealed class OpProfiler : IDisposable
{
    private readonly IDeviceRuntime runtime;
    private readonly Stack<TimingEvent> free = new();
    private readonly List<(string Name, OpWork Work, TimingEvent Start, TimingEvent End)> pending = [];
    private readonly Dictionary<string, OpTime> totals = [];
    private int depth;

    /// <summary>A profiler for ops on <paramref name="runtime"/>.</summary>
    public OpProfiler(IDeviceRuntime runtime) => this.runtime = runtime ?? throw new ArgumentNullException(nameof(runtime));

    /// <summary>Milliseconds, calls and work per op name, over what <see cref="Collect"/> has gathered.</summary>
    public IReadOnlyDictionary<string, OpTime> Totals => totals;

    /// <summary>Waits for the ops recorded so far and adds their times to <see cref="Totals"/>.</summary>
    public void Collect()
    {
        foreach (var (name, work, start, end) in pending)
        {
            end.Synchronize();
            var time = totals.GetValueOrDefault(name);
            totals[name] = new OpTime(time.Milliseconds + end.ElapsedMillisecondsSince(start), time.Calls + 1, time.Work + work);
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

    internal Scope Begin(string name, in OpWork work, DeviceStream stream)
    {
        if (depth++ > 0)
        {
            return new Scope(this, name, default, null, stream); // the outer op's work covers it
        }
        var start = Rent();
        start.Record(stream);
        return new Scope(this, name, work, start, stream);
    }

    private void End(string name, in OpWork work, TimingEvent? start, DeviceStream stream)
    {
        depth--;
        if (start is null)
        {
            return;
        }
        var end = Rent();
        end.Record(stream);
        pending.Add((name, work, start, end));
    }

    private TimingEvent Rent() => free.Count > 0 ? free.Pop() : runtime.CreateTimingEvent();

    /// <summary>Ends the op when disposed (a no-op default when no profiler is set).</summary>
    internal readonly struct Scope(OpProfiler? profiler, string name, OpWork work, TimingEvent? start, DeviceStream? stream) : IDisposable
    {
        public void Dispose() => profiler?.End(name, work, start, stream!);
    }
}

/// <summary>Device time of one op name, and the work it did in that time.</summary>
/// <param name="Milliseconds">Total milliseconds.</param>
/// <param name="Calls">Times it ran.</param>
/// <param name="Work">The bytes and FLOPs of all its calls.</param>
public readonly record struct OpTime(double Milliseconds, int Calls, OpWork Work)
{
    /// <summary>Bytes moved per second, in 10^9 (0 without a time).</summary>
    public double GigabytesPerSecond => Milliseconds > 0 ? Work.Bytes / (Milliseconds * 1e6) : 0;

    /// <summary>FLOPs per second, in 10^12 (0 without a time).</summary>
    public double TeraflopsPerSecond => Milliseconds > 0 ? Work.Flops / (Milliseconds * 1e9) : 0;
}
