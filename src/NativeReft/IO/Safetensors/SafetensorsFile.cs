using System.Buffers.Binary;
using System.Text.Json;
using NativeReft.Tensors;

namespace NativeReft.IO.Safetensors;

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length N, N bytes of JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}</c>), then the data
/// section, to which the offsets are relative. The whole header is validated on open, so a corrupt file fails
/// here with a message naming the file and the tensor, never later inside a kernel.
/// </summary>
public sealed class SafetensorsFile : IDisposable
{
    /// <summary>Headers beyond this are not safetensors files (the reference implementation's limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    private const string MetadataKey = "__metadata__";

    private static readonly HashSet<string> KnownDTypes = new(StringComparer.Ordinal)
    {
        "BOOL", "U8", "I8", "U16", "I16", "U32", "I32", "U64", "I64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F4",
        "F6_E2M3", "F6_E3M2", "F16", "BF16", "F32", "F64", "C64",
    };

    private SafetensorsFile(MappedFile file, IReadOnlyDictionary<string, string> metadata,
        IReadOnlyDictionary<string, WeightTensor> tensors)
    {
        Mapping = file;
        Metadata = metadata;
        Tensors = tensors;
    }

    /// <summary>The file's path.</summary>
    public string Path => Mapping.Path;

    /// <summary>
    /// The mapping the tensors read from. Whoever keeps the tensors owns it: pass it to a <see cref="Checkpoint"/>
    /// (which disposes it) or dispose this object.
    /// </summary>
    public MappedFile Mapping { get; }

    /// <summary>The header's <c>__metadata__</c> (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Every tensor, by its name in the file, in header order.</summary>
    public IReadOnlyDictionary<string, WeightTensor> Tensors { get; }

    /// <summary>Maps <paramref name="path"/> and validates its header; throws <see cref="ModelFormatException"/>.</summary>
    public static SafetensorsFile Open(string path)
    {
        var file = MappedFile.Open(path);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <inheritdoc />
    public void Dispose() => Mapping.Dispose();

    private static SafetensorsFile Parse(MappedFile file)
    {
        string path = file.Path;
        if (file.Length < 8)
        {
            throw new ModelFormatException(path,
                $"too short for a safetensors file ({file.Length} bytes; the header length alone takes 8)");
        }
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(file.Bytes(0, 8));
        if (headerLength == 0)
        {
            throw new ModelFormatException(path, "header length is 0: not a safetensors file");
        }
        if (headerLength > MaxHeaderBytes)
        {
            throw new ModelFormatException(path,
                $"header length {headerLength} is absurdly large (limit {MaxHeaderBytes} bytes): not a safetensors file");
        }
        if ((long)headerLength > file.Length - 8)
        {
            throw new ModelFormatException(path,
                $"header length {headerLength} runs past the end of the file ({file.Length} bytes): the file is truncated");
        }
        long dataStart = 8 + (long)headerLength;
        long dataLength = file.Length - dataStart;

        using (var document = JsonKeys.Parse(file.Bytes(8, (int)headerLength).ToArray(), path, "header is not valid JSON"))
        {
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new ModelFormatException(path, $"header must be a JSON object, found {document.RootElement.ValueKind}");
            }
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var entries = new List<Entry>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (!seen.Add(property.Name))
                {
                    throw new ModelFormatException(path, $"'{property.Name}' appears twice in the header");
                }
                if (property.Name == MetadataKey)
                {
                    ReadMetadata(path, property.Value, metadata);
                }
                else
                {
                    entries.Add(ReadEntry(path, property.Name, property.Value, dataLength));
                }
            }
            CheckNoOverlap(path, entries);
            var tensors = new Dictionary<string, WeightTensor>(entries.Count, StringComparer.Ordinal);
            foreach (var e in entries)
            {
                tensors[e.Name] = new WeightTensor(e.Name, e.Shape, e.DType, file, dataStart + e.Begin);
            }
            return new SafetensorsFile(file, metadata, tensors);
        }
    }

    private static void ReadMetadata(string path, JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
        {
            throw new ModelFormatException(path, $"'{MetadataKey}' must be an object of strings, found {value.ValueKind}");
        }
        foreach (var item in value.EnumerateObject())
        {
            if (item.Value.ValueKind != JsonValueKind.String)
            {
                throw new ModelFormatException(path,
                    $"'{MetadataKey}' entry '{item.Name}' must be a string, found {item.Value.ValueKind}");
            }
            metadata[item.Name] = item.Value.GetString()!;
        }
    }

    private static Entry ReadEntry(string path, string name, JsonElement value, long dataLength)
    {
        void Require(bool ok, string problem)
        {
            if (!ok)
            {
                throw new ModelFormatException(path, $"tensor '{name}': {problem}");
            }
        }

        Require(value.ValueKind == JsonValueKind.Object, $"entry must be an object, found {value.ValueKind}");
        Require(value.TryGetProperty("dtype", out var dtypeElement), "missing 'dtype'");
        Require(value.TryGetProperty("shape", out var shapeElement), "missing 'shape'");
        Require(value.TryGetProperty("data_offsets", out var offsetsElement), "missing 'data_offsets'");

        Require(dtypeElement.ValueKind == JsonValueKind.String, $"'dtype' must be a string, found {dtypeElement.ValueKind}");
        string dtypeText = dtypeElement.GetString()!;
        DType dtype = ParseDType(path, name, dtypeText);

        Require(shapeElement.ValueKind == JsonValueKind.Array, $"'shape' must be an array, found {shapeElement.ValueKind}");
        var shape = new int[shapeElement.GetArrayLength()];
        long elements = 1;
        int i = 0;
        foreach (var d in shapeElement.EnumerateArray())
        {
            long dimension = -1;
            Require(d.ValueKind == JsonValueKind.Number && d.TryGetInt64(out dimension),
                $"'shape' must hold integers, found {shapeElement.GetRawText()}");
            Require(dimension >= 0, $"negative dimension {dimension} in shape {shapeElement.GetRawText()}");
            Require(dimension <= int.MaxValue, $"dimension {dimension} is too large");
            shape[i++] = (int)dimension;
            // Saturate instead of overflowing: a product this large cannot match the offsets anyway.
            elements = dimension > 0 && elements > long.MaxValue / dimension ? long.MaxValue : elements * dimension;
        }

        Require(offsetsElement.ValueKind == JsonValueKind.Array && offsetsElement.GetArrayLength() == 2,
            $"'data_offsets' must be [begin, end], found {offsetsElement.GetRawText()}");
        long[] offsets = new long[2];
        for (int k = 0; k < 2; k++)
        {
            var o = offsetsElement[k];
            Require(o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out offsets[k]) && offsets[k] >= 0,
                $"'data_offsets' must be non-negative integers, found {offsetsElement.GetRawText()}");
        }
        long begin = offsets[0], end = offsets[1];
        Require(end >= begin, $"data_offsets [{begin}, {end}] end before they begin");
        Require(end <= dataLength,
            $"data_offsets [{begin}, {end}] run past the end of the data section ({dataLength} bytes): the file is truncated or its header is corrupt");
        int size = DTypes.SizeOf(dtype);
        long needed = elements > long.MaxValue / size ? long.MaxValue : elements * size;
        Require(end - begin == needed,
            $"holds {end - begin} bytes but shape [{string.Join(", ", shape)}] of {dtypeText} needs {needed}");
        return new Entry(name, dtype, shape, begin, end);
    }

    private static DType ParseDType(string path, string name, string text) => text switch
    {
        "F32" => DType.F32,
        "F16" => DType.F16,
        "BF16" => DType.BF16,
        "F64" => DType.F64,
        _ when KnownDTypes.Contains(text) => throw new ModelFormatException(path,
            $"dtype '{text}' of tensor '{name}' is not supported (supported: F32, F16, BF16, F64)"),
        _ => throw new ModelFormatException(path, $"tensor '{name}' has unknown dtype '{text}'"),
    };

    // Sorted by begin, any overlap shows up between neighbours; empty tensors occupy no bytes and are skipped.
    private static void CheckNoOverlap(string path, List<Entry> entries)
    {
        var sorted = entries.Where(e => e.End > e.Begin).OrderBy(e => e.Begin).ThenBy(e => e.End).ToList();
        for (int i = 1; i < sorted.Count; i++)
        {
            var (a, b) = (sorted[i - 1], sorted[i]);
            if (b.Begin < a.End)
            {
                throw new ModelFormatException(path,
                    $"tensors '{a.Name}' (bytes [{a.Begin}, {a.End})) and '{b.Name}' (bytes [{b.Begin}, {b.End})) overlap");
            }
        }
    }

    private sealed record Entry(string Name, DType DType, int[] Shape, long Begin, long End);
}
