using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using NativeReft.Tensors;

namespace NativeReft.IO.Gguf;

/// <summary>
/// Writes a GGUF v3 file: metadata and F32/F16/BF16 tensors, each aligned. Tests use it to make valid files and,
/// through <see cref="AddRawTensor"/>, files with bad types and offsets; it stores tensors as given (a llama Q/K
/// weight must already have its RoPE pairs interleaved).
/// </summary>
internal sealed class GgufWriter
{
    private readonly List<KeyValuePair<string, object>> metadata = [];
    private readonly List<(string Name, long[] Dimensions, uint Type, byte[] Data, ulong? Offset)> tensors = [];

    /// <summary>Alignment of the data section and tensors; a value other than 32 is written as general.alignment.</summary>
    public int Alignment { get; init; } = GgufFile.DefaultAlignment;

    public void Set(string key, string value) => Put(key, value);

    public void Set(string key, uint value) => Put(key, value);

    public void Set(string key, int value) => Put(key, value);

    public void Set(string key, float value) => Put(key, value);

    public void Set(string key, string[] values) => Put(key, values);

    public void Set(string key, float[] values) => Put(key, values);

    public void Set(string key, int[] values) => Put(key, values);

    public void Remove(string key) => metadata.RemoveAll(pair => pair.Key == key);

    /// <summary>Adds a tensor of row-major <paramref name="shape"/>, converting <paramref name="data"/> to <paramref name="type"/>.</summary>
    public void AddTensor(string name, int[] shape, DType type, ReadOnlySpan<float> data)
    {
        var bytes = new byte[data.Length * DTypes.SizeOf(type)];
        for (int i = 0; i < data.Length; i++)
        {
            switch (type)
            {
                case DType.F32:
                    BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), data[i]);
                    break;
                case DType.F16:
                    BinaryPrimitives.WriteHalfLittleEndian(bytes.AsSpan(2 * i), (Half)data[i]);
                    break;
                default:
                    BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), DTypes.FloatToBF16(data[i]));
                    break;
            }
        }
        AddRawTensor(name, [.. shape.Reverse().Select(d => (long)d)], GgmlTypes.FromDType(type), bytes);
    }

    /// <summary>
    /// Adds a tensor as stored: ggml dims (columns first), type number and bytes. <paramref name="offset"/> overrides
    /// the offset written in its info (the bytes still go where the layout puts them).
    /// </summary>
    public void AddRawTensor(string name, long[] ggmlDimensions, uint ggmlType, byte[] data, ulong? offset = null) =>
        tensors.Add((name, ggmlDimensions, ggmlType, data, offset));

    /// <summary>Writes the file to a temporary name and moves it over <paramref name="path"/>, so readers never see half a file.</summary>
    public void Save(string path)
    {
        var pairs = new List<KeyValuePair<string, object>>(metadata);
        if (Alignment != GgufFile.DefaultAlignment)
        {
            pairs.Add(new("general.alignment", (uint)Alignment));
        }
        var offsets = new long[tensors.Count];
        long end = 0;
        for (int i = 0; i < tensors.Count; i++)
        {
            offsets[i] = Align(end);
            end = offsets[i] + tensors[i].Data.Length;
        }
        AtomicFile.Write(path, stream =>
        {
            using var writer = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true); // BinaryWriter is little-endian
            writer.Write("GGUF"u8);
            writer.Write(3u);
            writer.Write((ulong)tensors.Count);
            writer.Write((ulong)pairs.Count);
            foreach (var (key, value) in pairs)
            {
                WriteString(writer, key);
                WriteValue(writer, value);
            }
            for (int i = 0; i < tensors.Count; i++)
            {
                var t = tensors[i];
                WriteString(writer, t.Name);
                writer.Write((uint)t.Dimensions.Length);
                foreach (long d in t.Dimensions)
                {
                    writer.Write((ulong)d);
                }
                writer.Write(t.Type);
                writer.Write(t.Offset ?? (ulong)offsets[i]);
            }
            long dataStart = Align(writer.BaseStream.Position);
            for (int i = 0; i < tensors.Count; i++)
            {
                PadTo(writer, dataStart + offsets[i]);
                writer.Write(tensors[i].Data);
            }
        });
    }

    private void Put(string key, object value)
    {
        Remove(key);
        metadata.Add(new(key, value));
    }

    private long Align(long position) => (position + Alignment - 1) / Alignment * Alignment;

    private static void PadTo(BinaryWriter writer, long position)
    {
        while (writer.BaseStream.Position < position)
        {
            writer.Write((byte)0);
        }
    }

    private static void WriteString(BinaryWriter writer, string text)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        writer.Write((ulong)utf8.Length);
        writer.Write(utf8);
    }

    private static void WriteValue(BinaryWriter writer, object value)
    {
        switch (value)
        {
            case string s:
                writer.Write(8u);
                WriteString(writer, s);
                break;
            case uint u:
                writer.Write(4u);
                writer.Write(u);
                break;
            case int i:
                writer.Write(5u);
                writer.Write(i);
                break;
            case float f:
                writer.Write(6u);
                writer.Write(f);
                break;
            case string[] strings:
                WriteArrayHeader(writer, 8u, strings.Length);
                foreach (string s in strings)
                {
                    WriteString(writer, s);
                }
                break;
            case float[] floats:
                WriteArrayHeader(writer, 6u, floats.Length);
                writer.Write(MemoryMarshal.AsBytes(floats.AsSpan()));
                break;
            case int[] ints:
                WriteArrayHeader(writer, 5u, ints.Length);
                writer.Write(MemoryMarshal.AsBytes(ints.AsSpan()));
                break;
            default:
                throw new ArgumentException($"GgufWriter cannot store a {value.GetType().Name}", nameof(value));
        }
    }

    private static void WriteArrayHeader(BinaryWriter writer, uint elementType, int count)
    {
        writer.Write(9u);
        writer.Write(elementType);
        writer.Write((ulong)count);
    }
}
