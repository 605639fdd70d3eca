using System.Buffers.Binary;
using System.Text;
using NativeReft.IO;
using NativeReft.IO.Gguf;
using NativeReft.Model;
using NativeReft.Tensors;
using NativeReft.Tests.Model;

namespace NativeReft.Tests.IO;

/// <summary>Every corrupt or unsupported GGUF is a <see cref="ModelFormatException"/> naming the file and the problem.</summary>
public sealed class GgufBadInputTests
{
    [Test]
    public void Bad_magic() =>
        AssertRejected(Patched(bytes => "GGML"u8.CopyTo(bytes)), "not a GGUF file: the magic is \"GGML\"");

    [TestCase(1u, "GGUF version 1 is not supported (supported: 2, 3)")]
    [TestCase(4u, "GGUF version 4 is not supported (supported: 2, 3)")]
    [TestCase(3u << 24, "big-endian")]
    public void Unsupported_version(uint version, string phrase) =>
        AssertRejected(Patched(bytes => BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(4), version)), phrase);

    [TestCase("header", "header: needs 8 bytes at offset 16")]
    [TestCase("metadata", "metadata pairs and 20 tensors cannot fit")]
    [TestCase("last metadata value", "metadata key 'tokenizer.ggml.eos_token_id': needs 4 bytes")]
    [TestCase("tensor infos", "tensor info")]
    [TestCase("data", "tensor 'output_norm.weight' (128 bytes at data offset")]
    public void Truncated(string where, string phrase)
    {
        string path = GgufTests.WriteTiny();
        byte[] bytes = File.ReadAllBytes(path);
        long dataOffset = ReadHeader(path).DataOffset;
        int infos = Find(bytes, "token_embd.weight") - 8;
        int cut = where switch
        {
            "header" => 20,
            "metadata" => 24 + (infos - 24) / 2, // so short that the counts alone show it
            "last metadata value" => infos - 2,
            "tensor infos" => infos + ((int)dataOffset - infos) / 2,
            _ => bytes.Length - 4,
        };
        File.WriteAllBytes(path, bytes[..cut]);
        AssertRejected(path, phrase);
        AssertRejected(path, "truncated");
    }

    [Test]
    public void A_string_length_past_the_end() =>
        AssertRejected(Patched(bytes => BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(24), 1UL << 40)),
            "metadata pair 0: string length 1099511627776 at offset 24 runs past the end");

    [Test]
    public void An_array_count_past_the_end() =>
        AssertRejected(Patched(bytes =>
        {
            int count = Find(bytes, "tokenizer.ggml.tokens") + "tokenizer.ggml.tokens".Length + 8; // after value and element types
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(count), 1UL << 50);
        }), "metadata key 'tokenizer.ggml.tokens': array of 1125899906842624 string elements");

    [Test]
    public void An_unknown_value_type() =>
        AssertRejected(Patched(bytes =>
        {
            int type = Find(bytes, "general.name") + "general.name".Length;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(type), 13);
        }), "metadata key 'general.name': unknown value type 13");

    [Test]
    public void More_than_four_dimensions() =>
        AssertRejected(Patched(bytes =>
        {
            int nDims = Find(bytes, "token_embd.weight") + "token_embd.weight".Length;
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(nDims), 5);
        }), "tensor 'token_embd.weight': has 5 dimensions; ggml allows at most 4");

    [Test]
    public void A_quantized_tensor()
    {
        string path = GgufTests.WriteTiny(
            w => w.AddRawTensor("blk.0.attn_q.weight", [32, 32], 2, new byte[32 * 18]),
            weights => weights.Remove(WeightNames.Wq(0)));
        AssertRejected(path, "tensor 'blk.0.attn_q.weight' has ggml type Q4_0 (2), which is not supported (supported: F32, F16, BF16); use an unquantized GGUF");
    }

    [Test]
    public void An_unknown_ggml_type() =>
        AssertRejected(GgufTests.WriteTiny(w => w.AddRawTensor("extra.weight", [8], 99, new byte[32])),
            "tensor 'extra.weight' has unknown ggml type 99");

    [Test]
    public void A_tensor_offset_out_of_range() =>
        AssertRejected(GgufTests.WriteTiny(w => w.AddRawTensor("extra.weight", [8], 0, new byte[32], offset: 1UL << 40)),
            "tensor 'extra.weight' (32 bytes at data offset 1099511627776) runs past the end");

    [Test]
    public void A_misaligned_tensor_offset() =>
        AssertRejected(GgufTests.WriteTiny(w => w.AddRawTensor("extra.weight", [8], 0, new byte[32], offset: 4)),
            "tensor 'extra.weight': data offset 4 is not a multiple of the alignment 32");

    [Test]
    public void Overlapping_tensors() =>
        AssertRejected(GgufTests.WriteTiny(w => w.AddRawTensor("extra.weight", [8], 0, new byte[32], offset: 0)),
            "overlap in the data section");

    [Test]
    public void A_missing_metadata_key() =>
        AssertRejected(GgufTests.WriteTiny(w => w.Remove("llama.block_count")), "missing metadata key 'llama.block_count'");

    [Test]
    public void A_metadata_key_of_the_wrong_type() =>
        AssertRejected(GgufTests.WriteTiny(w => w.Set("llama.block_count", "two")),
            "metadata key 'llama.block_count' is a string, expected an integer");

    [Test]
    public void An_unsupported_architecture() =>
        AssertRejected(GgufTests.WriteTiny(w => w.Set("general.architecture", "gpt2")),
            "unsupported architecture 'gpt2' (supported: llama)");

    [Test]
    public void A_tokenizer_that_does_not_match_the_model_vocabulary()
    {
        int vocab = TinyModels.Config().VocabSize;
        string path = GgufTests.WriteTiny(w =>
        {
            w.Set("tokenizer.ggml.tokens", TinyGguf.Pieces(vocab - 1));
            w.Set("tokenizer.ggml.scores", TinyGguf.Scores(vocab - 1));
        });
        AssertRejected(path, $"has a vocabulary of {vocab}");
    }

    [Test]
    public void Rope_factors_that_are_not_llama3_scaling()
    {
        int half = TinyModels.Config().HeadSize / 2;
        float[] factors = [.. Enumerable.Range(0, half).Select(i => 1f + i)];
        AssertRejected(GgufTests.WriteTiny(w => w.AddTensor("rope_freqs.weight", [half], DType.F32, factors)),
            "tensor 'rope_freqs.weight' holds RoPE frequency factors that are not Llama 3's scaling");
    }

    [Test]
    public void A_layer_beyond_the_block_count() =>
        AssertRejected(GgufTests.WriteTiny(w => w.AddTensor("blk.9.attn_norm.weight", [32], DType.F32, new float[32])),
            "tensor 'blk.9.attn_norm.weight' belongs to layer 9, but llama.block_count is 2");

    private static void AssertRejected(string path, string phrase)
    {
        var error = Assert.Throws<ModelFormatException>(() => GgufModelLoader.Load(path).Dispose())!;
        Assert.That(error.Message, Does.Contain(Path.GetFileName(path)).And.Contain(phrase));
    }

    private static string Patched(Action<byte[]> patch)
    {
        string path = GgufTests.WriteTiny();
        byte[] bytes = File.ReadAllBytes(path);
        patch(bytes);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static GgufFile ReadHeader(string path)
    {
        using var file = MappedFile.Open(path);
        return GgufFile.Read(file);
    }

    private static int Find(byte[] bytes, string text)
    {
        int at = bytes.AsSpan().IndexOf(Encoding.UTF8.GetBytes(text));
        Assert.That(at, Is.GreaterThanOrEqualTo(0), $"'{text}' is not in the file");
        return at;
    }
}
