namespace NativeReft.IO;

/// <summary>Opens a model by path, whatever its format: an HF directory, a GGUF file or a llama2.c <c>.bin</c>.</summary>
public static class ModelLoader
{
    /// <summary>Loads the checkpoint at <paramref name="path"/>; the format comes from what the path is, then its magic.</summary>
    public static Checkpoint Load(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            return Hf.HfModelLoader.Load(path);
        }
        if (!File.Exists(path))
        {
            throw new ModelFormatException(path, "no such file or directory (expected an HF model directory, a .gguf file or a llama2.c .bin)");
        }
        return IsGguf(path) ? Gguf.GgufModelLoader.Load(path) : Llama2cLoader.Load(path);
    }

    private static bool IsGguf(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("GGUF"u8);
    }
}
