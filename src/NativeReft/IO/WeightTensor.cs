using NativeReft.Tensors;

namespace NativeReft.IO;

/// <summary>
/// One weight in a checkpoint file: its canonical name, shape, stored dtype and where its bytes lie in the
/// mapping. Reading converts to float (and, for files that interleave RoPE pairs, permutes Q/K rows) on the fly.
/// </summary>
public sealed class WeightTensor
{
    private readonly MappedFile file;
    private readonly long offset;

    /// <summary>Describes a weight whose row-major bytes start at <paramref name="offset"/> of <paramref name="file"/>.</summary>
    /// <param name="name">Canonical (HF) name.</param>
    /// <param name="shape">Row-major shape, outermost first.</param>
    /// <param name="dtype">Stored element type.</param>
    /// <param name="file">The mapping that holds the bytes.</param>
    /// <param name="offset">Byte offset of the first element.</param>
    /// <param name="interleavedRopeHeads">
    /// For Q/K weights stored with RoPE pairs interleaved (llama2.c, GGUF): the number of heads, so rows are
    /// permuted to HF's rotate-half layout while reading; 0 for none.
    /// </param>
    public WeightTensor(string name, int[] shape, DType dtype, MappedFile file, long offset, int interleavedRopeHeads = 0)
    {
        Name = name;
        Shape = shape;
        DType = dtype;
        this.file = file;
        this.offset = offset;
        InterleavedRopeHeads = interleavedRopeHeads;
        long count = 1;
        foreach (int d in shape)
        {
            count *= d;
        }
        ElementCount = count;
        ByteLength = count * DTypes.SizeOf(dtype);
        // Checked here so a corrupt offset is reported at load time, naming the tensor.
        if (offset < 0 || offset > file.Length - ByteLength)
        {
            throw new ModelFormatException(file.Path,
                $"tensor '{name}' ({ByteLength} bytes at offset {offset}) runs past the end of the file ({file.Length} bytes): the file is truncated or corrupt");
        }
    }

    /// <summary>Canonical (HF) name.</summary>
    public string Name { get; }

    /// <summary>Row-major shape.</summary>
    public int[] Shape { get; }

    /// <summary>Element type as stored in the file.</summary>
    public DType DType { get; }

    /// <summary>Number of elements.</summary>
    public long ElementCount { get; }

    /// <summary>Bytes in the file.</summary>
    public long ByteLength { get; }

    /// <summary>Heads whose rotary pairs are interleaved in the file (0: already in HF layout).</summary>
    public int InterleavedRopeHeads { get; }

    /// <summary>The file that holds the weight.</summary>
    public string FilePath => file.Path;

    /// <summary>Shape as text, e.g. "(64, 512)".</summary>
    public string ShapeText => "(" + string.Join(", ", Shape) + ")";

    /// <summary>Converts the weight to float into <paramref name="destination"/> (exactly ElementCount long).</summary>
    public void ReadInto(Span<float> destination)
    {
        if (destination.Length != ElementCount)
        {
            throw new ArgumentException($"destination holds {destination.Length} elements, tensor '{Name}' has {ElementCount}", nameof(destination));
        }
        int columns = Shape.Length == 0 ? 1 : Shape[^1];
        int rows = (int)(ElementCount / columns);
        int elementSize = DTypes.SizeOf(DType);
        int rowBytes = columns * elementSize;
        for (int row = 0; row < rows; row++)
        {
            int sourceRow = InterleavedRopeHeads > 0 ? InterleavedSourceRow(row, rows / InterleavedRopeHeads) : row;
            DTypes.ToFloat(DType, file.Bytes(offset + (long)sourceRow * rowBytes, rowBytes),
                destination.Slice(row * columns, columns));
        }
    }

    /// <summary>
    /// Reads the weight as bf16 (HF layout): a bf16 checkpoint's rows are copied as they are, other types are
    /// converted one row at a time (round to nearest even), never through a full-size float copy.
    /// </summary>
    public void ReadInto(Span<BFloat16> destination)
    {
        if (destination.Length != ElementCount)
        {
            throw new ArgumentException($"destination holds {destination.Length} elements, tensor '{Name}' has {ElementCount}", nameof(destination));
        }
        int columns = Shape.Length == 0 ? 1 : Shape[^1];
        int rows = (int)(ElementCount / columns);
        int rowBytes = columns * DTypes.SizeOf(DType);
        var row = DType == DType.BF16 ? null : new float[columns];
        for (int r = 0; r < rows; r++)
        {
            int sourceRow = InterleavedRopeHeads > 0 ? InterleavedSourceRow(r, rows / InterleavedRopeHeads) : r;
            var bytes = file.Bytes(offset + (long)sourceRow * rowBytes, rowBytes);
            var target = destination.Slice(r * columns, columns);
            if (row is null)
            {
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, BFloat16>(bytes).CopyTo(target);
                continue;
            }
            DTypes.ToFloat(DType, bytes, row);
            for (int c = 0; c < columns; c++)
            {
                target[c] = BFloat16.FromFloat(row[c]);
            }
        }
    }

    /// <summary>Reads the whole weight as a new float array.</summary>
    public float[] ReadAll()
    {
        var data = new float[ElementCount];
        ReadInto(data);
        return data;
    }

    // HF row (h, j * half + i) holds what the interleaved layout stores at row (h, 2 i + j).
    private static int InterleavedSourceRow(int row, int headSize)
    {
        int half = headSize / 2;
        int head = row / headSize;
        int within = row % headSize;
        int j = within / half;
        int i = within % half;
        return head * headSize + 2 * i + j;
    }
}
