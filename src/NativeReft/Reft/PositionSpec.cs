using System.Text.RegularExpressions;

namespace NativeReft.Reft;

/// <summary>
/// pyreft's intervention positions <c>f&lt;p&gt;+l&lt;s&gt;</c>: the first p and the last s prompt tokens, each clamped
/// to at most half the prompt (so the two sets never overlap).
/// </summary>
public sealed partial record PositionSpec(int First, int Last)
{
    /// <summary>Parses "f7+l7", "f1", "l3" or "f2+l0"; anything else is an <see cref="InputException"/>.</summary>
    public static PositionSpec Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var m = Pattern().Match(text.Trim());
        if (!m.Success)
        {
            throw new InputException($"invalid positions '{text}': expected f<first>+l<last>, e.g. f7+l7, f1 or l3");
        }
        int first = m.Groups["f"].Success ? int.Parse(m.Groups["f"].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        int last = m.Groups["l"].Success ? int.Parse(m.Groups["l"].Value, System.Globalization.CultureInfo.InvariantCulture) : 0;
        if (first + last == 0)
        {
            throw new InputException($"invalid positions '{text}': at least one position is needed");
        }
        return new PositionSpec(first, last);
    }

    /// <summary>The first positions of a prompt of <paramref name="promptLength"/> tokens: 0 .. min(p, len/2) - 1.</summary>
    public int[] FirstPositions(int promptLength) => Enumerable.Range(0, Math.Min(First, promptLength / 2)).ToArray();

    /// <summary>The last positions: len - min(s, len/2) .. len - 1.</summary>
    public int[] LastPositions(int promptLength)
    {
        int n = Math.Min(Last, promptLength / 2);
        return Enumerable.Range(promptLength - n, n).ToArray();
    }

    /// <inheritdoc />
    public override string ToString() => First > 0 && Last > 0 ? $"f{First}+l{Last}" : First > 0 ? $"f{First}" : $"l{Last}";

    [GeneratedRegex(@"^(?:f(?<f>\d{1,5}))?(?:\+?l(?<l>\d{1,5}))?$", RegexOptions.IgnoreCase)]
    private static partial Regex Pattern();
}
