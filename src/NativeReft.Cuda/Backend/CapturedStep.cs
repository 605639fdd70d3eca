using NativeReft.Backends;

namespace NativeReft.Cuda;

/// <summary>
/// A training step recorded as one graph (<see cref="CudaBackend.CaptureStep"/>): <see cref="Run"/> replays all of
/// its kernels, GEMMs and copies with a single launch and no host work per op. It holds the device blocks the step
/// uses (out of the memory pool's reach) and the page-locked memory its host tables are copied from, until it is
/// disposed.
/// </summary>
public sealed class CapturedStep : IDisposable
{
    private readonly CudaBackend backend;
    private readonly DeviceGraph graph;
    private readonly CudaBackend.DeviceStepScalars scalars;
    private readonly AdamWStep captured;
    private readonly PoolReservation reservation;
    private readonly PinnedStaging staging;
    private bool disposed;

    internal CapturedStep(CudaBackend backend, DeviceGraph graph, CudaBackend.DeviceStepScalars scalars, AdamWStep captured,
        PoolReservation reservation, PinnedStaging staging)
    {
        this.backend = backend;
        this.graph = graph;
        this.scalars = scalars;
        this.captured = captured;
        this.reservation = reservation;
        this.staging = staging;
    }

    /// <summary>The graph's work items (<see cref="DeviceGraph.Nodes"/>): what the step would launch op by op.</summary>
    public int Nodes => graph.Nodes;

    /// <summary>Device memory the graph holds for itself (its activations and scratch).</summary>
    public long ReservedBytes => reservation.HeldBytes;

    /// <summary>
    /// Queues one replay of the step as <paramref name="optimizer"/>'s update (its learning rate and step count; the
    /// betas, epsilon and weight decay are the captured step's). Read the loss and norm from the step scalars.
    /// </summary>
    /// <exception cref="ArgumentException">The optimizer's betas, epsilon or weight decay differ from the captured ones.</exception>
    /// <exception cref="InvalidOperationException">The previous step was not read.</exception>
    public void Run(in AdamWStep optimizer)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (optimizer with { LearningRate = captured.LearningRate, Step = captured.Step } != captured)
        {
            throw new ArgumentException(
                $"the captured step was recorded with betas ({captured.Beta1}, {captured.Beta2}), epsilon {captured.Epsilon} and weight decay {captured.WeightDecay}; a replay changes only the learning rate and step: capture again for other settings",
                nameof(optimizer));
        }
        scalars.BeginReplay(optimizer);
        graph.Launch(backend.Stream);
    }

    /// <summary>Waits for the stream, then frees the graph and gives its blocks back to the pool.</summary>
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        disposed = true;
        backend.Stream.Synchronize();
        graph.Dispose();
        reservation.Dispose();
        staging.Dispose();
    }
}
