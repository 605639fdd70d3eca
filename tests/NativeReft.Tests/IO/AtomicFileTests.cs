using NativeReft.IO;
using NativeReft.Reporting;

namespace NativeReft.Tests.IO;

public sealed class AtomicFileTests
{
    [Test]
    public void A_save_interrupted_midway_leaves_the_previous_file_intact_and_no_temporary()
    {
        string path = Path.Combine(TestData.TempDirectory(), "intervention.safetensors");
        File.WriteAllText(path, "the good artifact");
        Assert.Throws<IOException>(() => AtomicFile.Write(path, stream =>
        {
            stream.Write("half of a new fi"u8);
            throw new IOException("disk full");
        }));
        Assert.That(File.ReadAllText(path), Is.EqualTo("the good artifact"));
        Assert.That(File.Exists(path + ".tmp"), Is.False);
    }

    [Test]
    public void The_loss_curve_is_a_valid_png()
    {
        string path = Path.Combine(TestData.TempDirectory(), "loss.png");
        LossCurvePng.Write(path, [3.0, 2.5, 2.7, 1.0, double.NaN, 0.5]);
        byte[] png = File.ReadAllBytes(path);
        Assert.That(png[..8], Is.EqualTo(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }));
        Assert.That(System.Text.Encoding.ASCII.GetString(png, 12, 4), Is.EqualTo("IHDR"));
        Assert.That(System.Text.Encoding.ASCII.GetString(png, png.Length - 8, 4), Is.EqualTo("IEND"));
    }
}
