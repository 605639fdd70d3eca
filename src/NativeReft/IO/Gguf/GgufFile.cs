using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using NativeReft.Tensors;

namespace NativeReft.IO.Gguf;

/// <summary>
/// The header of a GGUF file (version 2 or 3, little-endian): metadata key/value pairs and tensor infos, read from a
/// <see cref="MappedFile"/>. Layout: magic "GGUF", u32 version, u64 tensor count, u64 pair count, the pairs (key
/// string, u32 value type, value), the tensor infos (name, u32 n_dims, u64 dims, u32 ggml type, u64 offset), padding
/// to <c>general.alignment</c> (default 32), then the data section that tensor offsets are relative to. Strings are
/// a u64 byte length and UTF-8 bytes. Every length and count is checked against the file before it is used, so a
/// truncated or corrupt file is a <see cref="ModelFormatException"/> naming the key or tensor, never a crash.
/// </summary>
public sealed class GgufFile
{
    /// <summary>Alignment of the data section and of every tensor when <c>general.alignment</c> is absent.</summary>
    public const int DefaultAlignment = 32;

    // GGUF value types by number; 9 is an array.
    private static readonly string[] ValueTypeNames = ["u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64"];

    private static readonly Dictionary<Type, string> ClrTypeNames = new()
    {
        [typeof(byte)] = "u8", [typeof(sbyte)] = "i8", [typeof(ushort)] = "u16", [typeof(short)] = "i16",
        [typeof(uint)] = "u32", [typeof(int)] = "i32", [typeof(float)] = "f32", [typeof(bool)] = "bool",
        [typeof(string)] = "string", [typeof(ulong)] = "u64", [typeof(long)] = "i64", [typeof(double)] = "f64",
    };

    private GgufFile(string path, int version, Dictionary<string, object> metadata)
    {
        Path = path;
        Version = version;
        Metadata = metadata;
    }

    /// <summary>The file the header was read from.</summary>
    public string Path { get; }

    /// <summary>GGUF format version (2 or 3).</summary>
    public int Version { get; }

    /// <summary>
    /// Metadata by key, in file order. Scalars are boxed <c>byte, sbyte, ushort, short, uint, int, float, bool,
    /// string, ulong, long, double</c>; arrays are typed arrays of those (e.g. <c>string[]</c>, <c>float[]</c>).
    /// </summary>
    public IReadOnlyDictionary<string, object> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; private set; } = [];

    /// <summary>Alignment of the data section and of each tensor offset.</summary>
    public int Alignment { get; private set; } = DefaultAlignment;

    /// <summary>Absolute offset of the data section.</summary>
    public long DataOffset { get; private set; }

    /// <summary>Reads and checks the header of <paramref name="file"/>; tensor bytes stay in the mapping.</summary>
    public static GgufFile Read(MappedFile file)
    {
        ArgumentNullException.ThrowIfNull(file);
        var reader = new Reader(file);
        var magic = reader.Take(4);
        if (!magic.SequenceEqual("GGUF"u8))
        {
            throw new ModelFormatException(file.Path, $"not a GGUF file: the magic is {DescribeMagic(magic)}, expected \"GGUF\"");
        }
        uint version = reader.U32();
        if (version is not (2 or 3))
        {
            // GGUF v3 allows big-endian files; their version reads byte-swapped here.
            string hint = BinaryPrimitives.ReverseEndianness(version) is 2 or 3
                ? " (this looks like a big-endian GGUF; only little-endian files are read)" : "";
            throw new ModelFormatException(file.Path, $"GGUF version {version} is not supported (supported: 2, 3){hint}");
        }
        ulong tensorCount = reader.U64();
        ulong pairCount = reader.U64();
        // A pair takes at least 13 bytes and a tensor info 24, so an absurd count fails here, before any allocation.
        ulong remaining = (ulong)reader.Remaining;
        if (pairCount > remaining / 13 || tensorCount > remaining / 24 || pairCount * 13 + tensorCount * 24 > remaining
            || pairCount > int.MaxValue || tensorCount > int.MaxValue)
        {
            throw reader.Problem($"{pairCount} metadata pairs and {tensorCount} tensors cannot fit in the {reader.Remaining} bytes left in the file: the file is truncated or corrupt");
        }
        var gguf = new GgufFile(file.Path, (int)version, ReadMetadata(reader, (int)pairCount));
        gguf.Alignment = gguf.ReadAlignment();
        var infos = ReadTensorInfos(reader, (int)tensorCount);
        gguf.DataOffset = AlignUp(reader.Position, gguf.Alignment);
        gguf.Tensors = gguf.PlaceTensors(infos, file.Length);
        return gguf;
    }

    /// <summary>The string at <paramref name="key"/>; missing or of another type: a <see cref="ModelFormatException"/>.</summary>
    public string GetString(string key) => FindString(key) ?? throw Missing(key);

    /// <summary>The string at <paramref name="key"/>, or null when absent; another type is a <see cref="ModelFormatException"/>.</summary>
    public string? FindString(string key) => Find<string>(key);

    /// <summary>The integer (of any GGUF integer type) at <paramref name="key"/>; missing, another type or outside int: an error.</summary>
    public int GetInt32(string key) => FindInt32(key) ?? throw Missing(key);

    /// <summary>The integer at <paramref name="key"/>, or null when absent; another type or outside int is a <see cref="ModelFormatException"/>.</summary>
    public int? FindInt32(string key)
    {
        if (!Metadata.TryGetValue(key, out object? value))
        {
            return null;
        }
        Int128? integer = value switch
        {
            byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, ulong v => v, long v => v,
            _ => null,
        };
        if (integer is not { } n)
        {
            throw WrongType(key, value, "an integer");
        }
        if (n < int.MinValue || n > int.MaxValue)
        {
            throw new ModelFormatException(Path, $"metadata key '{key}' is {n}, outside the range of a 32-bit integer");
        }
        return (int)n;
    }

    /// <summary>The number (float or integer) at <paramref name="key"/>, or null when absent; another type is an error.</summary>
    public double? FindNumber(string key)
    {
        if (!Metadata.TryGetValue(key, out object? value))
        {
            return null;
        }
        return value switch
        {
            float v => v, double v => v,
            byte v => v, sbyte v => v, ushort v => v, short v => v, uint v => v, int v => v, ulong v => v, long v => v,
            _ => throw WrongType(key, value, "a number"),
        };
    }

    /// <summary>The array of <typeparamref name="T"/> at <paramref name="key"/>, or null when absent; another type is an error.</summary>
    public T[]? FindArray<T>(string key) => Find<T[]>(key);

    private T? Find<T>(string key) where T : class
    {
        if (!Metadata.TryGetValue(key, out object? value))
        {
            return null;
        }
        return value as T ?? throw WrongType(key, value, (typeof(T).IsArray ? "an " : "a ") + TypeName(typeof(T)));
    }

    private ModelFormatException Missing(string key) => new(Path, $"missing metadata key '{key}'");

    private ModelFormatException WrongType(string key, object value, string expected) =>
        new(Path, $"metadata key '{key}' is {(value.GetType().IsArray ? "an" : "a")} {TypeName(value.GetType())}, expected {expected}");

    private static string TypeName(Type type) =>
        type.IsArray ? "array of " + TypeName(type.GetElementType()!) : ClrTypeNames.GetValueOrDefault(type, type.Name);

    private static Dictionary<string, object> ReadMetadata(Reader reader, int count)
    {
        var metadata = new Dictionary<string, object>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            reader.Context = $"metadata pair {i}";
            string key = reader.String();
            reader.Context = $"metadata key '{key}'";
            object value = reader.Value(reader.U32());
            if (!metadata.TryAdd(key, value))
            {
                throw reader.Problem("the key appears twice");
            }
        }
        return metadata;
    }

    private int ReadAlignment()
    {
        int alignment = FindInt32("general.alignment") ?? DefaultAlignment;
        if (alignment <= 0 || (alignment & (alignment - 1)) != 0)
        {
            throw new ModelFormatException(Path, $"general.alignment is {alignment}; it must be a positive power of two");
        }
        return alignment;
    }

    private static List<(string Name, long[] Dims, DType DType, ulong Offset)> ReadTensorInfos(Reader reader, int count)
    {
        var infos = new List<(string, long[], DType, ulong)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < count; i++)
        {
            reader.Context = $"tensor info {i}";
            string name = reader.String();
            reader.Context = $"tensor '{name}'";
            uint nDims = reader.U32();
            if (nDims > 4)
            {
                throw reader.Problem($"has {nDims} dimensions; ggml allows at most 4");
            }
            var dims = new long[nDims];
            for (int d = 0; d < dims.Length; d++)
            {
                ulong size = reader.U64();
                if (size > int.MaxValue)
                {
                    throw reader.Problem($"dimension {d} is {size}, more than 2^31 - 1");
                }
                dims[d] = (long)size;
            }
            uint type = reader.U32();
            ulong offset = reader.U64();
            var dtype = GgmlTypes.ToDType(type) ?? throw new ModelFormatException(reader.Path, GgmlTypes.Unsupported(name, type));
            if (!names.Add(name))
            {
                throw reader.Problem("appears twice");
            }
            infos.Add((name, dims, dtype, offset));
        }
        return infos;
    }

    // Checks that every tensor is aligned, inside the data section and disjoint from the others.
    private List<GgufTensorInfo> PlaceTensors(List<(string Name, long[] Dims, DType DType, ulong Offset)> infos, long fileLength)
    {
        long available = Math.Max(0, fileLength - DataOffset);
        var tensors = new List<GgufTensorInfo>(infos.Count);
        foreach (var (name, dims, dtype, offset) in infos)
        {
            if (offset % (ulong)Alignment != 0)
            {
                throw new ModelFormatException(Path, $"tensor '{name}': data offset {offset} is not a multiple of the alignment {Alignment}");
            }
            // Counting stops once it exceeds the file, so four 2^31 dims cannot overflow.
            long count = 1;
            foreach (long d in dims)
            {
                count = d == 0 || count <= fileLength / d ? count * d : fileLength + 1;
            }
            long bytes = Math.Min(count, fileLength + 1) * DTypes.SizeOf(dtype);
            if (offset > (ulong)available || bytes > available - (long)offset)
            {
                throw new ModelFormatException(Path,
                    $"tensor '{name}' ({bytes} bytes at data offset {offset}) runs past the end of the file ({fileLength} bytes, data section from {DataOffset}): the file is truncated or corrupt");
            }
            tensors.Add(new GgufTensorInfo(name, dims, dtype, DataOffset + (long)offset));
        }
        GgufTensorInfo? previous = null;
        foreach (var t in tensors.Where(t => t.ByteLength > 0).OrderBy(t => t.Offset))
        {
            if (previous is not null && t.Offset < previous.Offset + previous.ByteLength)
            {
                throw new ModelFormatException(Path,
                    $"tensors '{previous.Name}' and '{t.Name}' overlap in the data section ('{previous.Name}' spans bytes {previous.Offset - DataOffset}..{previous.Offset - DataOffset + previous.ByteLength}, '{t.Name}' starts at {t.Offset - DataOffset})");
            }
            previous = t;
        }
        return tensors;
    }

    private static long AlignUp(long position, int alignment) => (position + alignment - 1) / alignment * alignment;

    private static string DescribeMagic(ReadOnlySpan<byte> magic)
    {
        foreach (byte b in magic)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return Convert.ToHexString(magic);
            }
        }
        return $"\"{Encoding.ASCII.GetString(magic)}\"";
    }

    /// <summary>A cursor over the mapping; every read is checked and errors say what was being read.</summary>
    private sealed class Reader(MappedFile file)
    {
        public string Path => file.Path;

        public long Position { get; private set; }

        public long Remaining => file.Length - Position;

        /// <summary>What is being read, for error messages ("metadata key 'general.name'").</summary>
        public string Context { get; set; } = "header";

        public ModelFormatException Problem(string problem) => new(file.Path, $"{Context}: {problem}");

        public ReadOnlySpan<byte> Take(long count)
        {
            if (count > Remaining)
            {
                throw Problem($"needs {count} bytes at offset {Position}, but the file ends at {file.Length}: the file is truncated");
            }
            if (count > int.MaxValue)
            {
                throw Problem($"a block of {count} bytes at offset {Position} is too large to be metadata");
            }
            var bytes = file.Bytes(Position, (int)count);
            Position += count;
            return bytes;
        }

        public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

        public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

        public string String()
        {
            long start = Position;
            ulong length = U64();
            if (length > (ulong)Remaining)
            {
                throw Problem($"string length {length} at offset {start} runs past the end of the file ({file.Length} bytes): the file is truncated or corrupt");
            }
            return Encoding.UTF8.GetString(Take((long)length));
        }

        public object Value(uint type) => type switch
        {
            0 => Take(1)[0],
            1 => (sbyte)Take(1)[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(Take(2)),
            3 => BinaryPrimitives.ReadInt16LittleEndian(Take(2)),
            4 => U32(),
            5 => BinaryPrimitives.ReadInt32LittleEndian(Take(4)),
            6 => BinaryPrimitives.ReadSingleLittleEndian(Take(4)),
            7 => Take(1)[0] != 0,
            8 => String(),
            9 => Array(),
            10 => U64(),
            11 => BinaryPrimitives.ReadInt64LittleEndian(Take(8)),
            12 => BinaryPrimitives.ReadDoubleLittleEndian(Take(8)),
            _ => throw Problem($"unknown value type {type}"),
        };

        private object Array()
        {
            uint type = U32();
            long start = Position;
            ulong count = U64();
            if (type == 9)
            {
                throw Problem("arrays of arrays are not supported");
            }
            if (type >= ValueTypeNames.Length)
            {
                throw Problem($"array of unknown element type {type}");
            }
            // A string element takes at least its 8-byte length.
            int minSize = type switch { 0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, _ => 8 };
            if (count > (ulong)Remaining / (ulong)minSize || count > (ulong)System.Array.MaxLength)
            {
                throw Problem($"array of {count} {ValueTypeNames[type]} elements at offset {start} runs past the end of the file ({file.Length} bytes): the file is truncated or corrupt");
            }
            int n = (int)count;
            return type switch
            {
                0 => Take(n).ToArray(),
                1 => Primitives<sbyte>(n),
                2 => Primitives<ushort>(n),
                3 => Primitives<short>(n),
                4 => Primitives<uint>(n),
                5 => Primitives<int>(n),
                6 => Primitives<float>(n),
                7 => Take(n).ToArray().Select(b => b != 0).ToArray(),
                8 => Enumerable.Range(0, n).Select(_ => String()).ToArray(),
                10 => Primitives<ulong>(n),
                11 => Primitives<long>(n),
                _ => Primitives<double>(n),
            };
        }

        // The file is little-endian, as is every platform .NET runs this on.
        private T[] Primitives<T>(int count) where T : unmanaged =>
            MemoryMarshal.Cast<byte, T>(Take((long)count * System.Runtime.CompilerServices.Unsafe.SizeOf<T>())).ToArray();
    }
}
