using NativeReft.Tensors;

namespace NativeReft.Cuda;

/// <summary>
/// The launcher for kernels/embedding.cu: gathers rows of a bf16 embedding table by int32 token id, one block per
/// token. Queues one launch on the stream given and returns (no synchronization); shapes are checked first.
/// </summary>
public sealed class EmbeddingKernels : IDisposable
{
    /// <summary>The kernel file.</summary>
    public const string FileName = "embedding.cu";

    private const int RowBlock = 128;

    private readonly IDeviceRuntime runtime;
    private readonly KernelModule module;
    private readonly KernelFunction forward;

    /// <summary>Loads (compiling or taking from the cache) the kernels on <paramref name="runtime"/>.</summary>
    public EmbeddingKernels(IDeviceRuntime runtime)
    {
        ArgumentNullException.ThrowIfNull(runtime);
        this.runtime = runtime;
        module = runtime.LoadModule(FileName);
        forward = module.GetFunction("embedding_forward");
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
        if (!error.IsEmpty && error.Length != 1)
        {
            throw new ArgumentException($"embedding: the error flag is one int, not {error.Length}");
        }
        if (tokens.IsEmpty)
        {
            return;
        }
        int vocabulary = checked((int)(table.Length / columns));
        int count = checked((int)tokens.Length);
        runtime.Launch(forward, new LaunchConfig((uint)count, RowBlock), stream, output.Pointer, error.Pointer, table.Pointer,
            tokens.Pointer, count, vocabulary, columns);
    }

    /// <summary>Unloads the module.</summary>
    public void Dispose() => module.Dispose();
}
