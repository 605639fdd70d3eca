using NativeReft.Backends;
using NativeReft.Tensors;

namespace NativeReft.Model;

/// <summary>
/// Keys and values of every layer for <see cref="Batch"/> sequences of up to <see cref="Capacity"/> positions,
/// on the model's backend: (batch * capacity, kvHeads * headSize) per layer. <see cref="Length"/> positions are filled.
/// </summary>
public sealed class KvCache : IDisposable
{
    internal KvCache(IBackend backend, LlamaConfig config, int batch, int capacity)
    {
        Batch = batch;
        Capacity = capacity;
        Keys = new Tensor[config.Layers];
        Values = new Tensor[config.Layers];
        for (int l = 0; l < config.Layers; l++)
        {
            Keys[l] = backend.Zeros(batch * capacity, config.KvDim);
            Values[l] = backend.Zeros(batch * capacity, config.KvDim);
        }
    }

    /// <summary>Sequences held.</summary>
    public int Batch { get; }

    /// <summary>Positions each sequence can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions filled so far (the next token's position).</summary>
    public int Length { get; internal set; }

    internal Tensor[] Keys { get; }

    internal Tensor[] Values { get; }

    /// <summary>Forgets every position, keeping the memory.</summary>
    public void Reset() => Length = 0;

    /// <inheritdoc />
    public void Dispose()
    {
        foreach (var t in Keys.Concat(Values))
        {
            t.Dispose();
        }
    }
}
