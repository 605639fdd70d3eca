using System.Buffers.Binary;
using System.Text;
using NativeReft.IO.Safetensors;
using NativeReft.Tensors;

namespace NativeReft.Tests.IO;

[TestFixture]
public sealed class SafetensorsTests
{
    private string directory = "";

    [SetUp]
    public void SetUp() => directory = TestData.TempDirectory();

    [TearDown]
    public void TearDown() => Directory.Delete(directory, recursive: true);

    private static float[] RandomValues(int count, int seed)
    {
        var random = new Random(seed);
        return [.. Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() * 8 - 4))];
    }

    // Odd shapes, a vector, a scalar and an empty tensor, so offsets and padding are exercised.
    private static readonly (string Name, int[] Shape)[] Shapes =
        [("b.weight", [3, 5]), ("a.bias", [7]), ("scalar", []), ("empty", [0, 4]), ("c.weight", [2, 3, 11])];

    private string WriteSample(DType dtype, out Dictionary<string, float[]> data, string file = "sample.safetensors")
    {
        var writer = new SafetensorsWriter();
        data = [];
        int seed = 1;
        foreach (var (name, shape) in Shapes)
        {
            var values = RandomValues(shape.Aggregate(1, (n, d) => n * d), seed++);
            data[name] = values;
            writer.Add(name, shape, values, dtype);
        }
        writer.Metadata["format"] = "pt";
        string path = Path.Combine(directory, file);
        writer.Write(path);
        return path;
    }

    [TestCase(DType.F32)]
    [TestCase(DType.F16)]
    [TestCase(DType.BF16)]
    public void Round_trip_reads_back_what_was_written_rounded_to_the_dtype(DType dtype)
    {
        string path = WriteSample(dtype, out var data);

        using var file = SafetensorsFile.Open(path);

        Assert.That(file.Metadata, Is.EquivalentTo(new Dictionary<string, string> { ["format"] = "pt" }));
        Assert.That(file.Tensors.Keys, Is.EquivalentTo(Shapes.Select(s => s.Name)));
        foreach (var (name, shape) in Shapes)
        {
            var tensor = file.Tensors[name];
            Assert.That(tensor.Shape, Is.EqualTo(shape), name);
            Assert.That(tensor.DType, Is.EqualTo(dtype), name);
            float[] expected = [.. data[name].Select(x => dtype switch
            {
                DType.F16 => (float)(Half)x,
                DType.BF16 => DTypes.BF16ToFloat(DTypes.FloatToBF16(x)),
                _ => x,
            })];
            Assert.That(tensor.ReadAll(), Is.EqualTo(expected), name); // exact: the rounding is the dtype's own
        }
    }

    [Test]
    public void Header_is_padded_to_8_bytes_and_tensors_are_laid_out_in_name_order()
    {
        string path = WriteSample(DType.F32, out _);
        byte[] bytes = File.ReadAllBytes(path);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(bytes);

        Assert.That(headerLength % 8, Is.Zero);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)headerLength);
        int[] positions = [.. Shapes.Select(s => s.Name).Order(StringComparer.Ordinal).Select(n => header.IndexOf($"\"{n}\"", StringComparison.Ordinal))];
        Assert.That(positions, Is.Ordered);
        Assert.That(header.Contains("\"__metadata__\":{\"format\":\"pt\"}", StringComparison.Ordinal));
    }

    [Test]
    public void Same_tensors_added_in_another_order_give_identical_bytes()
    {
        var a = new SafetensorsWriter();
        var b = new SafetensorsWriter();
        foreach (var (name, shape) in Shapes)
        {
            a.Add(name, shape, new float[shape.Aggregate(1, (n, d) => n * d)]);
        }
        foreach (var (name, shape) in Shapes.Reverse())
        {
            b.Add(name, shape, new float[shape.Aggregate(1, (n, d) => n * d)]);
        }
        a.Write(Path.Combine(directory, "a.safetensors"));
        b.Write(Path.Combine(directory, "b.safetensors"));

        Assert.That(File.ReadAllBytes(Path.Combine(directory, "b.safetensors")),
            Is.EqualTo(File.ReadAllBytes(Path.Combine(directory, "a.safetensors"))));
    }

    [Test]
    public void Write_replaces_an_existing_file_and_leaves_no_temporary_behind()
    {
        string path = Path.Combine(directory, "model.safetensors");
        File.WriteAllText(path, "old contents");

        WriteSample(DType.BF16, out _, "model.safetensors");

        using (var file = SafetensorsFile.Open(path))
        {
            Assert.That(file.Tensors, Has.Count.EqualTo(Shapes.Length));
        }
        Assert.That(Directory.GetFiles(directory), Is.EqualTo(new[] { path }));
    }

    [Test]
    public void Writer_rejects_data_that_does_not_fill_the_shape()
    {
        var writer = new SafetensorsWriter();
        Assert.That(() => writer.Add("x", [2, 3], new float[5]), Throws.ArgumentException.With.Message.Contains("needs 6 values"));
        writer.Add("x", [1], [1f]);
        Assert.That(() => writer.Add("x", [1], [1f]), Throws.ArgumentException.With.Message.Contains("already added"));
    }

    // Each: the header JSON, the size of the data section, and what the error must say.
    private static IEnumerable<TestCaseData> BadHeaders()
    {
        static TestCaseData Case(string name, string header, int data, string phrase) =>
            new TestCaseData(header, data, phrase).SetName($"Bad header is rejected: {name}");

        yield return Case("invalid JSON", "{\"x\": {\"dtype\": ", 0, "not valid JSON");
        yield return Case("not an object", "[1, 2]", 0, "must be a JSON object");
        yield return Case("missing dtype", """{"x":{"shape":[1],"data_offsets":[0,4]}}""", 4, "tensor 'x': missing 'dtype'");
        yield return Case("missing shape", """{"x":{"dtype":"F32","data_offsets":[0,4]}}""", 4, "tensor 'x': missing 'shape'");
        yield return Case("missing offsets", """{"x":{"dtype":"F32","shape":[1]}}""", 4, "tensor 'x': missing 'data_offsets'");
        yield return Case("unknown dtype", """{"x":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}}""", 4, "unknown dtype 'Q9'");
        yield return Case("unsupported dtype", """{"x":{"dtype":"I32","shape":[1],"data_offsets":[0,4]}}""", 4,
            "dtype 'I32' of tensor 'x' is not supported (supported: F32, F16, BF16");
        yield return Case("negative dimension", """{"x":{"dtype":"F32","shape":[-1, 4],"data_offsets":[0,4]}}""", 4, "negative dimension");
        yield return Case("end before begin", """{"x":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}}""", 8, "end before they begin");
        yield return Case("offsets past the data", """{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}""", 12,
            "run past the end of the data section");
        yield return Case("length mismatch", """{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", 8,
            "tensor 'x': holds 8 bytes but shape [3] of F32 needs 12");
        yield return Case("overlap", """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12,
            "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap");
        yield return Case("bad metadata", """{"__metadata__":{"n":1}}""", 0, "'__metadata__' entry 'n' must be a string");
        yield return Case("duplicate name", """{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}""", 4,
            "'x' appears twice");
    }

    [TestCaseSource(nameof(BadHeaders))]
    public void Bad_header_is_rejected(string header, int dataBytes, string phrase)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + dataBytes];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)json.Length);
        json.CopyTo(bytes, 8);
        string path = Path.Combine(directory, "bad.safetensors");
        File.WriteAllBytes(path, bytes);

        AssertRejected(path, phrase);
    }

    [TestCase(5, 0UL, "too short for a safetensors file", TestName = "Truncated file is rejected")]
    [TestCase(64, 0UL, "header length is 0", TestName = "Zero header length is rejected")]
    [TestCase(64, 57UL, "header length 57 runs past the end of the file (64 bytes)", TestName = "Header length beyond the file is rejected")]
    [TestCase(64, 1UL << 40, "absurdly large", TestName = "Absurd header length is rejected")]
    public void Bad_header_length_is_rejected(int fileBytes, ulong headerLength, string phrase)
    {
        var bytes = new byte[fileBytes];
        if (fileBytes >= 8)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes, headerLength);
        }
        string path = Path.Combine(directory, "bad.safetensors");
        File.WriteAllBytes(path, bytes);

        AssertRejected(path, phrase);
    }

    private static void AssertRejected(string path, string phrase)
    {
        var e = Assert.Throws<ModelFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.That(e!.Message, Does.Contain(path).And.Contain(phrase));
    }
}
