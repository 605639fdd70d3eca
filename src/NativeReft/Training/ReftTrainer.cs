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
    /// <see cref="TrainingDivergedException"/> before anything of that step is saved.
    /// </summary>
    public void Train(string? checkpointPath = null, IProgress<StepReport>? progress = null, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        long tokens = 0;
        int startStep = Step;
        using var scalars = model.Backend.CreateStepScalars();
        while (Step < TotalSteps)
        {
            cancellation.ThrowIfCancellationRequested();
            var examples = ExamplesOfStep(Step);
            double labelled = examples.Sum(e => e.LabelledTokens);
            double rate = Schedule.RateAt(Step);
            // The whole step is queued with its scalars on the backend; the host waits once, in Read.
            scalars.Begin(optimizer.Next(rate));
            set.ZeroGradients();
            int micro = 0;
            foreach (var chunk in examples.Chunk(options.BatchSize))
            {
                var batch = new ReftBatch(chunk);
                var dropout = set.Config.Dropout > 0 ? new DropoutMasks(set.Config.Dropout, (ulong)options.Seed, Step, micro) : null;
                ReftObjective.ForwardBackward(model, set, batch, 1 / labelled, dropout, scalars);
                tokens += batch.RealTokens;
                micro++;
            }
            AdamWOptimizer.ClipGradients(set, options.MaxGradNorm, scalars);
            StepResult result;
            try
            {
                optimizer.Apply(set, scalars); // skipped where the loss or norm is not finite
                result = scalars.Read();
            }
            catch (InvalidOperationException e)
            {
                throw new TrainingDivergedException(
                    $"training diverged at step {Step + 1}: the update overflowed ({e.Message}). Nothing of this step was saved; {LastCheckpoint(checkpointPath)}. Try a lower --lr (now {options.LearningRate}).");
            }
            double loss = result.Loss / labelled;
            double norm = result.GradientNorm;
            if (!double.IsFinite(loss) || !double.IsFinite(norm))
            {
                throw new TrainingDivergedException(
                    $"training diverged at step {Step + 1}: loss {loss}, gradient norm {norm}. The parameters were left as they were and nothing of this step was saved; {LastCheckpoint(checkpointPath)}. Try a lower --lr (now {options.LearningRate}) or --max-grad-norm.");
            }
            losses.Add(loss);
            Step++;
            if (checkpointPath is not null && (Step % options.SaveEvery == 0 || Step == TotalSteps))
            {
                SaveCheckpoint(checkpointPath);
            }
            double seconds = clock.Elapsed.TotalSeconds;
            int done = Step - startStep;
            progress?.Report(new StepReport(Step, TotalSteps, (Step - 1) / StepsPerEpoch + 1, loss, rate, norm,
                tokens / Math.Max(seconds, 1e-9), TimeSpan.FromSeconds(seconds / done * (TotalSteps - Step))));
        }
    }

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

    // The examples of optimizer step `step`: a seeded permutation per epoch, cut into steps of batch * accumulation.
    private ReftExample[] ExamplesOfStep(int step)
    {
        int epoch = step / StepsPerEpoch;
        int perStep = options.BatchSize * options.GradientAccumulation;
        int[] order = Enumerable.Range(0, data.Examples.Count).ToArray();
        new Random(unchecked(options.Seed * 1_000_003 + epoch)).Shuffle(order);
        int first = step % StepsPerEpoch * perStep;
        return [.. order.Skip(first).Take(perStep).Select(i => data.Examples[i])];
    }

    private string OptionsText() => options.ToString();

    private static string LastCheckpoint(string? path) =>
        path is not null && File.Exists(path) ? $"the last good checkpoint is {path}" : "no checkpoint was written yet";
}
