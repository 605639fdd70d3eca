using NativeReft.Model;

namespace NativeReft.Tests.Model;

public sealed class RopeTests
{
    private static LlamaConfig Config(RopeScaling? scaling) => new()
    {
        Dim = 4096, HiddenDim = 1, Layers = 1, Heads = 32, KvHeads = 8, VocabSize = 3, RopeTheta = 500000, RopeScaling = scaling,
    };

    [Test]
    public void Without_scaling_the_frequencies_are_theta_to_the_minus_2i_over_d()
    {
        double[] inv = Config(null).RopeInverseFrequencies();
        Assert.That(inv, Has.Length.EqualTo(64));
        Assert.That(inv[0], Is.EqualTo(1.0));
        Assert.That(inv[10], Is.EqualTo(Math.Pow(500000, -20.0 / 128)).Within(1e-15));
    }

    [Test]
    public void Linear_scaling_divides_every_frequency()
    {
        double[] plain = Config(null).RopeInverseFrequencies();
        double[] scaled = Config(new RopeScaling("linear", 4)).RopeInverseFrequencies();
        Assert.That(scaled, Is.EqualTo(plain.Select(f => f / 4)).Within(1e-18));
    }

    [Test]
    public void Llama3_scaling_keeps_short_wavelengths_divides_long_ones_and_blends_between()
    {
        // Llama 3.1's published values.
        var scaling = new RopeScaling("llama3", Factor: 8, LowFreqFactor: 1, HighFreqFactor: 4, OriginalMaxPositions: 8192);
        double[] plain = Config(null).RopeInverseFrequencies();
        double[] scaled = Config(scaling).RopeInverseFrequencies();
        int kept = 0, divided = 0, blended = 0;
        for (int i = 0; i < plain.Length; i++)
        {
            double wavelength = 2 * Math.PI / plain[i];
            if (wavelength < 8192 / 4.0)
            {
                Assert.That(scaled[i], Is.EqualTo(plain[i]), $"pair {i} (short wavelength) is kept");
                kept++;
            }
            else if (wavelength > 8192 / 1.0)
            {
                Assert.That(scaled[i], Is.EqualTo(plain[i] / 8).Within(1e-18), $"pair {i} (long wavelength) is divided");
                divided++;
            }
            else
            {
                Assert.That(scaled[i], Is.InRange(plain[i] / 8, plain[i]), $"pair {i} is blended");
                blended++;
            }
        }
        // All three bands occur for Llama 3.1's shape, so each branch above was exercised.
        Assert.That(new[] { kept, divided, blended }, Is.All.Positive);
    }

    [Test]
    public void An_unsupported_scaling_type_is_rejected_by_name()
    {
        var e = Assert.Throws<ModelFormatException>(() => Config(new RopeScaling("yarn", 4)).Validate("config.json"))!;
        Assert.That(e.Message, Does.Contain("yarn"));
    }
}
