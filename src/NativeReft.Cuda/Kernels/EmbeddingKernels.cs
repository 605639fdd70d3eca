using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/embedding.cu: gathers rows of a bf16 table by int32 id (the token embedding, any row
/// gather), and scatters rows back (plain and accumulating). Each method queues one launch on the stream given and
/// returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class EmbeddingKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "embedding.cu";

    private const int RowBlock = 128;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;
    private readonly KernelFunction scatter;
    private readonly KernelFunction scatterAdd;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public EmbeddingKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("embedding_forward");
        scatter = module.GetFunction("scatter_rows_forward");
        scatterAdd = module.GetFunction("scatter_add_rows_forward");
    }

    /// <summary>The loaded module (its image carries ptxas's resource report).</summary>
    public KernelModule Module => module;

    /// <summary>
    /// output[t] = table[tokens[t]]: table (vocabulary, columns), tokens (N), output (N, columns). An id outside
    /// the vocabulary writes nothing to its row and sets error[0] = 1 (error may be empty: no report).
    /// </summary>
    public void Forward(DeviceView<BFloat16> table, int columns, DeviceView<int> tokens, DeviceView<BFloat16> output,
        DeviceView<int> error, DeviceStream stream)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (table.Length % columns != 0)
        {
            throw new ArgumentException($"embedding: table of {table.Length} elements does not hold rows of {columns}");
        }
        if (output.Length != tokens.Length * columns)
        {
            throw new ArgumentException($"embedding: output has {output.Length} elements, expected {tokens.Length} tokens x {columns}");
        }
        RequireFlag(error, "embedding");
        if (tokens.IsEmpty)
        {
            return;
        }
        int vocabulary = checked((int)(table.Length / columns));
        int count = checked((int)tokens.Length);
        runtime.Launch(forward, new LaunchConfig((uint)count, RowBlock), stream, output.Pointer, error.Pointer, table.Pointer,
            tokens.Pointer, count, vocabulary, columns);
    }

    /// <summary>
    /// output[rows[i]] = source[i] (rows distinct): source (N, columns), rows (N), output (R, columns). A row id
    /// outside [0, R) writes nothing and sets error[0] = 1 (error may be empty).
    /// </summary>
    public void ScatterRows(DeviceView<BFloat16> source, DeviceView<int> rows, int columns, DeviceView<BFloat16> output,
        DeviceView<int> error, DeviceStream stream)
    {
        if (CheckScatter(source, rows, columns, output, error, "scatter rows", out int count, out int outRows))
        {
            runtime.Launch(scatter, new LaunchConfig((uint)count, RowBlock), stream, output.Pointer, error.Pointer, source.Pointer,
                rows.Pointer, count, outRows, columns);
        }
    }

    /// <summary>
    /// output[rows[i]] += source[i] (bf16), repeated ids adding up in row order (deterministic): the backward of a
    /// row gather. Shapes and the error flag as <see cref="ScatterRows"/>.
    /// </summary>
    public void ScatterAddRows(DeviceView<BFloat16> source, DeviceView<int> rows, int columns, DeviceView<BFloat16> output,
        DeviceView<int> error, DeviceStream stream)
    {
        if (CheckScatter(source, rows, columns, output, error, "scatter-add rows", out int count, out int outRows))
        {
            runtime.Launch(scatterAdd, LaunchConfig.ForElements(columns, RowBlock), stream, output.Pointer, error.Pointer, source.Pointer,
                rows.Pointer, count, outRows, columns);
        }
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();

    private static bool CheckScatter(DeviceView<BFloat16> source, DeviceView<int> rows, int columns, DeviceView<BFloat16> output,
        DeviceView<int> error, string what, out int count, out int outRows)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(columns);
        if (source.Length != rows.Length * columns)
        {
            throw new ArgumentException($"{what}: source has {source.Length} elements, expected {rows.Length} rows x {columns}");
        }
        if (output.Length % columns != 0)
        {
            throw new ArgumentException($"{what}: output of {output.Length} elements does not hold rows of {columns}");
        }
        RequireFlag(error, what);
        count = checked((int)rows.Length);
        outRows = checked((int)(output.Length / columns));
        return count > 0;
    }

    private static void RequireFlag(DeviceView<int> error, string what)
    {
        if (!error.IsEmpty && error.Length != 1)
        {
            throw new ArgumentException($"{what}: the error flag is one int, not {error.Length}");
        }
    }
}
