using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using NativeReft.Tensors;

namespace NativeReft.IO.Safetensors;

/// <summary>
/// Writes float tensors as a safetensors file, each stored as F32, F16 or BF16 (rounded to nearest even).
/// Tensors are laid out in ordinal name order, so the same inputs always give the same bytes; the header is padded
/// with spaces to a multiple of 8 so the data section is 8-byte aligned. The file is written beside its final name
/// and renamed into place, so an interrupted write never leaves a corrupt file under that name.
/// </summary>
public sealed class SafetensorsWriter
{
    private const int ChunkElements = 1 << 16;

    private readonly SortedDictionary<string, Pending> tensors = new(StringComparer.Ordinal);

    /// <summary>Key/value strings stored as the header's <c>__metadata__</c>.</summary>
    public Dictionary<string, string> Metadata { get; } = new(StringComparer.Ordinal);

    /// <summary>Adds a tensor; <paramref name="data"/> is row-major and is read when <see cref="Write"/> runs.</summary>
    /// <param name="name">Tensor name, unique in the file.</param>
    /// <param name="shape">Row-major shape, outermost first.</param>
    /// <param name="data">Exactly product(shape) values.</param>
    /// <param name="dtype">Stored element type: F32, F16 or BF16 (F64 also works).</param>
    public void Add(string name, int[] shape, float[] data, DType dtype = DType.F32)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (name == "__metadata__")
        {
            throw new ArgumentException("'__metadata__' is reserved for the header's metadata", nameof(name));
        }
        long count = 1;
        foreach (int d in shape)
        {
            ArgumentOutOfRangeException.ThrowIfNegative(d, nameof(shape));
            count *= d;
        }
        if (count != data.Length)
        {
            throw new ArgumentException(
                $"tensor '{name}': shape ({string.Join(", ", shape)}) needs {count} values, got {data.Length}", nameof(data));
        }
        _ = DTypes.SizeOf(dtype); // rejects an undefined dtype now rather than halfway through the file
        if (!tensors.TryAdd(name, new Pending([.. shape], data, dtype)))
        {
            throw new ArgumentException($"tensor '{name}' was already added", nameof(name));
        }
    }

    /// <summary>Bytes the tensors' data will take (the file minus its header).</summary>
    public long DataBytes => tensors.Values.Sum(t => (long)t.Data.Length * DTypes.SizeOf(t.DType));

    /// <summary>Writes the file to <paramref name="path"/> (replacing it) via <c>path + ".tmp"</c>.</summary>
    public void Write(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        byte[] header = Header();
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var t in tensors.Values)
            {
                WriteData(stream, t);
            }
        });
    }

    private byte[] Header()
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (Metadata.Count > 0)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
                {
                    json.WriteString(key, value);
                }
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var (name, t) in tensors)
            {
                long bytes = (long)t.Data.Length * DTypes.SizeOf(t.DType);
                json.WriteStartObject(name);
                json.WriteString("dtype", t.DType.ToString());
                json.WriteStartArray("shape");
                foreach (int d in t.Shape)
                {
                    json.WriteNumberValue(d);
                }
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + bytes);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += bytes;
            }
            json.WriteEndObject();
        }
        int padding = (int)((8 - buffer.Length % 8) % 8);
        buffer.Write(Encoding.ASCII.GetBytes(new string(' ', padding)));
        return buffer.ToArray();
    }

    // Converted in chunks so a large tensor never needs a second full-size copy. Safetensors is little-endian, as
    // is every platform .NET runs this engine on.
    private static void WriteData(Stream stream, Pending t)
    {
        if (t.DType == DType.F32)
        {
            stream.Write(MemoryMarshal.AsBytes(t.Data.AsSpan()));
            return;
        }
        int size = DTypes.SizeOf(t.DType);
        var chunk = new byte[Math.Min(t.Data.Length, ChunkElements) * size];
        for (int start = 0; start < t.Data.Length; start += ChunkElements)
        {
            var source = t.Data.AsSpan(start, Math.Min(ChunkElements, t.Data.Length - start));
            var destination = chunk.AsSpan(0, source.Length * size);
            switch (t.DType)
            {
                case DType.F16:
                    System.Numerics.Tensors.TensorPrimitives.ConvertToHalf(source, MemoryMarshal.Cast<byte, Half>(destination));
                    break;
                case DType.BF16:
                    var halves = MemoryMarshal.Cast<byte, ushort>(destination);
                    for (int i = 0; i < source.Length; i++)
                    {
                        halves[i] = DTypes.FloatToBF16(source[i]);
                    }
                    break;
                case DType.F64:
                    var doubles = MemoryMarshal.Cast<byte, double>(destination);
                    for (int i = 0; i < source.Length; i++)
                    {
                        doubles[i] = source[i];
                    }
                    break;
                default:
                    throw new InvalidOperationException($"cannot store {t.DType}");
            }
            stream.Write(destination);
        }
    }

    private sealed record Pending(int[] Shape, float[] Data, DType DType);
}
