using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using NativeReft.Backends;
using NativeReft.IO.Safetensors;
using NativeReft.Model;
using NativeReft.Reft;

namespace NativeReft.Training;

/// <summary>
/// Trains an <see cref="InterventionSet"/> on a frozen model: seeded shuffling per epoch, micro-batches with
/// gradient accumulation, loss averaged over the step's labelled tokens, clipping, AdamW with warmup and decay,
/// the orthogonality retraction, and periodic checkpoints from which a run resumes bit for bit.
/// </summary>
public sealed class ReftTrainer
{
    /// <summary>The checkpoint file name in the output directory.</summary>
    public const string CheckpointFile = "checkpoint.safetensors";

    private const string StateKey = "trainer_state";

    private readonly LlamaModel model;
    private readonly InterventionSet set;
    private readonly ReftDataset data;
    private readonly TrainingOptions options;
    private readonly AdamWOptimizer optimizer;
    private readonly List<double> losses = [];
    private (int Epoch, int[] Order) shuffled = (-1, []);

    /// <summary>A trainer starting at step 0.</summary>
    public ReftTrainer(LlamaModel model, InterventionSet set, ReftDataset data, TrainingOptions options)
    {
        this.model = model ?? throw new ArgumentNullException(nameof(model));
        this.set = set ?? throw new ArgumentNullException(nameof(set));
        this.data = data ?? throw new ArgumentNullException(nameof(data));
        this.options = options ?? throw new ArgumentNullException(nameof(options));
        options.Validate();
        optimizer = new AdamWOptimizer(weightDecay: options.WeightDecay);
        int examplesPerStep = options.BatchSize * options.GradientAccumulation;
        StepsPerEpoch = (data.Examples.Count + examplesPerStep - 1) / examplesPerStep;
        TotalSteps = StepsPerEpoch * options.Epochs;
        Schedule = new LearningRateSchedule(options.LearningRate, TotalSteps, (int)Math.Ceiling(options.WarmupRatio * TotalSteps), options.Schedule);
    }

    /// <summary>Optimizer steps per epoch.</summary>
    public int StepsPerEpoch { get; }

    /// <summary>Optimizer steps in the run.</summary>
    public int TotalSteps { get; }

    /// <summary>The learning-rate schedule.</summary>
    public LearningRateSchedule Schedule { get; }

    /// <summary>Optimizer steps done.</summary>
    public int Step { get; private set; }

    /// <summary>The loss of every step done, in order.</summary>
    public IReadOnlyList<double> Losses => losses;

    /// <summary>
    /// Runs the remaining steps. Checkpoints go to <paramref name="checkpointPath"/> (when given) every
    /// <see cref="TrainingOptions.SaveEvery"/> steps and at the end. A non-finite loss or gradient throws
    /// <see cref="TrainingDivergedException"/> before anything of that step is saved, the parameters as they were
    /// before it.
    /// </summary>
    /// <remarks>
    /// On a backend that queues work (<see cref="IBackend.QueuesWork"/>: a GPU), the next step is queued before the
    /// last one is read (except after a step that saves a checkpoint), so the device has it to run while the host
    /// waits for that read and prepares the step after: the device does not idle between steps. A step queued
    /// behind one that diverges changes nothing (<see cref="StepScalars.Begin(in AdamWStep, StepScalars)"/>). A
    /// cancellation then takes effect once the step already queued is done and counted.
    /// </remarks>
    public void Train(string? checkpointPath = null, IProgress<StepReport>? progress = null, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        int startStep = Step;
        using var even = model.Backend.CreateStepScalars();
        using var odd = model.Backend.CreateStepScalars();
        var inFlight = new Queue<QueuedStep>(2);
        int depth = model.Backend.QueuesWork ? 2 : 1; // steps queued at once
        int next = Step;
        try
        {
            while (Step < TotalSteps)
            {
                if (inFlight.Count == 0)
                {
                    cancellation.ThrowIfCancellationRequested();
                }
                while (next < TotalSteps && inFlight.Count < depth && !cancellation.IsCancellationRequested
                    && (inFlight.Count == 0 || !Saves(inFlight.Peek().Index + 1, checkpointPath)))
                {
                    inFlight.Enqueue(QueueStep(next, next % 2 == 0 ? even : odd, inFlight.Count > 0 ? inFlight.Peek().Scalars : null));
                    next++;
                }
                var step = inFlight.Dequeue();
                var (loss, norm) = Finish(step, checkpointPath);
                tokens += step.Tokens;
                double seconds = clock.Elapsed.TotalSeconds;
                int done = Step - startStep;
                progress?.Report(new StepReport(Step, TotalSteps, (Step - 1) / StepsPerEpoch + 1, loss, step.Rate, norm,
                    tokens / Math.Max(seconds, 1e-9), TimeSpan.FromSeconds(seconds / done * (TotalSteps - Step))));
            }
        }
        finally
        {
            // After an exception: the step queued behind the one that threw has changed nothing; wait for it before
            // its scalars are freed, its result moot.
            foreach (var step in inFlight)
            {
                try
                {
                    step.Scalars.Read();
                }
                catch (InvalidOperationException)
                {
                }
            }
        }
    }

    // Queues step `index` whole (its micro-batches, clipping, AdamW and the retraction) on `scalars`, behind
    // `previous` when that step has not been read. An update the backend refuses at once (the CPU backend's
    // degenerate retraction) is kept for Finish, so the steps before it are still counted.
    private QueuedStep QueueStep(int index, StepScalars scalars, StepScalars? previous)
    {
        var examples = ExamplesOfStep(index);
        double labelled = examples.Sum(e => e.LabelledTokens);
        double rate = Schedule.RateAt(index);
        var update = optimizer.Next(rate);
        if (previous is null)
        {
            scalars.Begin(update);
        }
        else
        {
            scalars.Begin(update, previous);
        }
        set.ZeroGradients();
        long tokens = 0;
        int micro = 0;
        foreach (var chunk in examples.Chunk(options.BatchSize))
        {
            var batch = new ReftBatch(chunk);
            var dropout = set.Config.Dropout > 0 ? new DropoutMasks(set.Config.Dropout, (ulong)options.Seed, index, micro) : null;
            ReftObjective.ForwardBackward(model, set, batch, 1 / labelled, dropout, scalars);
            tokens += batch.RealTokens;
            micro++;
        }
        AdamWOptimizer.ClipGradients(set, options.MaxGradNorm, scalars);
        InvalidOperationException? refused = null;
        try
        {
            optimizer.Apply(set, scalars); // skipped where the loss or norm is not finite
        }
        catch (InvalidOperationException e)
        {
            refused = e;
        }
        return new QueuedStep(index, scalars, labelled, rate, tokens, refused);
    }

    // Reads a queued step (the host's one wait per step), checks it, counts it and saves a checkpoint when due.
    private (double Loss, double Norm) Finish(QueuedStep step, string? checkpointPath)
    {
        StepResult result;
        try
        {
            result = step.Scalars.Read();
            if (step.Refused is { } refused)
            {
                throw refused;
            }
        }
        catch (InvalidOperationException e)
        {
            throw new TrainingDivergedException(
                $"training diverged at step {step.Index + 1}: the update overflowed ({e.Message}). Nothing of this step was saved; {LastCheckpoint(checkpointPath)}. Try a lower --lr (now {options.LearningRate}).");
        }
        double loss = result.Loss / step.Labelled;
        double norm = result.GradientNorm;
        if (!double.IsFinite(loss) || !double.IsFinite(norm))
        {
            throw new TrainingDivergedException(
                $"training diverged at step {step.Index + 1}: loss {loss}, gradient norm {norm}. The parameters were left as they were and nothing of this step was saved; {LastCheckpoint(checkpointPath)}. Try a lower --lr (now {options.LearningRate}) or --max-grad-norm.");
        }
        losses.Add(loss);
        Step++;
        if (Saves(Step, checkpointPath))
        {
            SaveCheckpoint(checkpointPath!);
        }
        return (loss, norm);
    }

    // Whether the checkpoint is written once `stepsDone` steps are done.
    private bool Saves(int stepsDone, string? checkpointPath) =>
        checkpointPath is not null && (stepsDone % options.SaveEvery == 0 || stepsDone == TotalSteps);

    /// <summary>Writes parameters, AdamW moments and the trainer state to one file, atomically.</summary>
    public void SaveCheckpoint(string path)
    {
        // Written field by field (no reflection), so trimmed self-contained builds keep it working.
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteNumber("step", Step);
            json.WriteNumber("optimizer_steps", optimizer.Steps);
            json.WriteNumber("examples", data.Examples.Count);
            json.WriteString("options", OptionsText());
            json.WriteStartArray("losses");
            foreach (double l in losses)
            {
                json.WriteStringValue(l.ToString("R", CultureInfo.InvariantCulture));
            }
            json.WriteEndArray();
            json.WriteEndObject();
        }
        string state = System.Text.Encoding.UTF8.GetString(buffer.WrittenSpan);
        set.WriteFile(path, new Dictionary<string, string> { [StateKey] = state }, withMoments: true);
    }

    /// <summary>
    /// Restores a checkpoint written by <see cref="SaveCheckpoint"/> into this trainer (whose intervention set
    /// was loaded from the same file); the run must use the same data and options.
    /// </summary>
    public void Resume(string path)
    {
        using var file = SafetensorsFile.Open(path);
        if (!file.Metadata.TryGetValue(StateKey, out string? json))
        {
            throw new ModelFormatException(path, "not a training checkpoint (no trainer state)");
        }
        using var document = JsonDocument.Parse(json);
        var root = document.RootElement;
        if (root.GetProperty("examples").GetInt32() != data.Examples.Count || root.GetProperty("options").GetString() != OptionsText())
        {
            throw new InputException($"{path} was written by a run with other data or options ({root.GetProperty("options").GetString()}, {root.GetProperty("examples").GetInt32()} examples); resume with the same ones");
        }
        set.ReadMoments(file);
        Step = root.GetProperty("step").GetInt32();
        optimizer.Steps = root.GetProperty("optimizer_steps").GetInt32();
        losses.Clear();
        losses.AddRange(root.GetProperty("losses").EnumerateArray().Select(e => double.Parse(e.GetString()!, CultureInfo.InvariantCulture)));
    }

    // The examples of optimizer step `step`: a seeded permutation per epoch (made once per epoch, not per step:
    // O(examples) of host work between two steps), cut into steps of batch * accumulation.
    private ReftExample[] ExamplesOfStep(int step)
    {
        int epoch = step / StepsPerEpoch;
        if (shuffled.Epoch != epoch)
        {
            int[] order = Enumerable.Range(0, data.Examples.Count).ToArray();
            new Random(unchecked(options.Seed * 1_000_003 + epoch)).Shuffle(order);
            shuffled = (epoch, order);
        }
        int perStep = options.BatchSize * options.GradientAccumulation;
        int first = step % StepsPerEpoch * perStep;
        return [.. shuffled.Order.Skip(first).Take(perStep).Select(i => data.Examples[i])];
    }

    private string OptionsText() => options.ToString();

    // A step queued and not yet read: its scalars, what its report needs, and an update the backend refused.
    private sealed record QueuedStep(int Index, StepScalars Scalars, double Labelled, double Rate, long Tokens, InvalidOperationException? Refused);

    private static string LastCheckpoint(string? path) =>
        path is not null && File.Exists(path) ? $"the last good checkpoint is {path}" : "no checkpoint was written yet";
}
