using NativeReft.Tensors;

namespace NativeReft.Cuda;

public sealed partial class CudaBackend
{
    /// <inheritdoc />
    public void Embedding(Tensor table, ReadOnlySpan<int> tokens, Tensor output)
    {
        var (t, o) = (Cast(table), Cast(output));
        using var op = Op("gather rows", OpWork.Rows(tokens.Length, t.Columns));
        if (o.Rows != tokens.Length || o.Columns != t.Columns)
        {
            throw new ArgumentException($"embedding: output {o.ShapeText} does not fit {tokens.Length} rows of {t.Columns}");
        }
        RequireIndices(tokens, t.Rows, "embedding", "token");
        using var ids = Stage(tokens);
        embedding.Forward(t.BFloat16, t.Columns, ids.View, o.BFloat16, errorFlag.View, Stream);
    }

    /// <inheritdoc />
    public void ScatterRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (s, d) = (Cast(source), Cast(destination));
        using var op = Op("scatter rows", OpWork.Rows(rows.Length, s.Columns));
        RequireScatter(s, rows, d, "scatter rows");
        using var ids = Stage(rows);
        embedding.ScatterRows(s.BFloat16, ids.View, s.Columns, d.BFloat16, errorFlag.View, Stream);
    }

    /// <inheritdoc />
    public void ScatterAddRows(Tensor source, ReadOnlySpan<int> rows, Tensor destination)
    {
        var (s, d) = (Cast(source), Cast(destination));
        using var op = Op("scatter rows", OpWork.Rows(rows.Length, s.Columns, adds: true));
        RequireScatter(s, rows, d, "scatter-add rows");
        using var ids = Stage(rows);
        embedding.ScatterAddRows(s.BFloat16, ids.View, s.Columns, d.BFloat16, errorFlag.View, Stream);
    }

    /// <inheritdoc />
    public void CopyRows(Tensor source, Tensor destination, int batch, int destinationStride, int destinationOffset)
    {
        var s = Cast(source);
        using var op = Op("kv cache append", OpWork.Rows(s.Rows, s.Columns));
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(batch);
        if (s.Rows % batch != 0)
        {
            throw new ArgumentException($"copy rows: {s.Rows} rows do not split into {batch} sequences");
        }
        int perBatch = s.Rows / batch;
        if (destinationOffset < 0 || destinationOffset + perBatch > destinationStride)
        {
            throw new ArgumentException($"copy rows: {perBatch} rows at offset {destinationOffset} do not fit a stride of {destinationStride}");
        }
        var rows = new int[s.Rows];
        for (int i = 0; i < rows.Length; i++)
        {
            rows[i] = i / perBatch * destinationStride + destinationOffset + i % perBatch;
        }
        ScatterRows(source, rows, destination); // the KV cache's append is a scatter to computed rows
    }

    private static void RequireScatter(CudaTensor source, ReadOnlySpan<int> rows, CudaTensor destination, string what)
    {
        if (source.Rows != rows.Length || source.Columns != destination.Columns)
        {
            throw new ArgumentException($"{what}: source {source.ShapeText}, {rows.Length} rows, destination {destination.ShapeText}");
        }
        RequireIndices(rows, destination.Rows, what, "row");
    }

    private static void RequireIndices(ReadOnlySpan<int> indices, int count, string what, string name)
    {
        foreach (int i in indices)
        {
            if ((uint)i >= (uint)count)
            {
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"{what}: {name} {i} outside [0, {count})");
            }
        }
    }
}
