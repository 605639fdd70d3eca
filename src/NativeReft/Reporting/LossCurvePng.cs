using System.IO.Compression;

namespace NativeReft.Reporting;

/// <summary>
/// Draws a loss curve as a small PNG (white background, light grid, the curve in blue) with no dependency: the
/// PNG encoder is the format's minimum (IHDR, one zlib IDAT, IEND, CRC-32).
/// </summary>
public static class LossCurvePng
{
    private const int Width = 640, Height = 360, Margin = 24;

    /// <summary>Writes the curve of <paramref name="losses"/> to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, IReadOnlyList<double> losses)
    {
        ArgumentNullException.ThrowIfNull(losses);
        var pixels = new byte[Height * Width * 3];
        Array.Fill(pixels, (byte)255);
        for (int i = 0; i <= 4; i++)
        {
            int y = Margin + i * (Height - 2 * Margin) / 4;
            Line(pixels, Margin, y, Width - Margin, y, (225, 225, 225));
        }
        Line(pixels, Margin, Margin, Margin, Height - Margin, (120, 120, 120));
        Line(pixels, Margin, Height - Margin, Width - Margin, Height - Margin, (120, 120, 120));
        var finite = losses.Where(double.IsFinite).ToArray();
        if (finite.Length > 0)
        {
            double min = finite.Min(), max = finite.Max();
            double span = max > min ? max - min : 1;
            (int X, int Y) Point(int i, double loss) => (
                Margin + (int)Math.Round((double)i / Math.Max(1, losses.Count - 1) * (Width - 2 * Margin)),
                Height - Margin - (int)Math.Round((loss - min) / span * (Height - 2 * Margin)));
            for (int i = 1; i < losses.Count; i++)
            {
                if (double.IsFinite(losses[i - 1]) && double.IsFinite(losses[i]))
                {
                    var (x0, y0) = Point(i - 1, losses[i - 1]);
                    var (x1, y1) = Point(i, losses[i]);
                    Line(pixels, x0, y0, x1, y1, (31, 119, 180));
                    Line(pixels, x0, y0 + 1, x1, y1 + 1, (31, 119, 180));
                }
            }
        }
        IO.AtomicFile.Write(path, stream => Encode(stream, pixels));
    }

    private static void Line(byte[] pixels, int x0, int y0, int x1, int y1, (byte R, byte G, byte B) color)
    {
        int steps = Math.Max(Math.Abs(x1 - x0), Math.Abs(y1 - y0));
        for (int s = 0; s <= steps; s++)
        {
            int x = x0 + (steps == 0 ? 0 : (x1 - x0) * s / steps);
            int y = y0 + (steps == 0 ? 0 : (y1 - y0) * s / steps);
            if (x >= 0 && x < Width && y >= 0 && y < Height)
            {
                int i = (y * Width + x) * 3;
                (pixels[i], pixels[i + 1], pixels[i + 2]) = color;
            }
        }
    }

    private static void Encode(Stream output, byte[] rgb)
    {
        output.Write([137, 80, 78, 71, 13, 10, 26, 10]);
        var header = new byte[13];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header, Width);
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(header.AsSpan(4), Height);
        header[8] = 8; // bit depth
        header[9] = 2; // colour type: RGB
        Chunk(output, "IHDR", header);
        using var compressed = new MemoryStream();
        using (var zlib = new ZLibStream(compressed, CompressionLevel.Optimal, leaveOpen: true))
        {
            for (int y = 0; y < Height; y++)
            {
                zlib.WriteByte(0); // filter: none
                zlib.Write(rgb, y * Width * 3, Width * 3);
            }
        }
        Chunk(output, "IDAT", compressed.ToArray());
        Chunk(output, "IEND", []);
    }

    private static void Chunk(Stream output, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        System.Buffers.Binary.BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        output.Write(word);
        byte[] typeBytes = System.Text.Encoding.ASCII.GetBytes(type);
        output.Write(typeBytes);
        output.Write(data);
        uint crc = Crc32(Crc32(0xFFFFFFFF, typeBytes), data) ^ 0xFFFFFFFF;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(word, crc);
        output.Write(word);
    }

    private static readonly uint[] CrcTable = Enumerable.Range(0, 256).Select(n =>
    {
        uint c = (uint)n;
        for (int k = 0; k < 8; k++)
        {
            c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
        }
        return c;
    }).ToArray();

    private static uint Crc32(uint crc, byte[] data)
    {
        foreach (byte b in data)
        {
            crc = CrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
        }
        return crc;
    }
}
