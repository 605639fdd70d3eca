namespace NativeReft.Reft;

/// <summary>Parses the layers to intervene on: "all" or a list like "2;10;18" (pyreft's syntax).</summary>
public static class LayerSpec
{
    /// <summary>Sorted distinct layer indices for a model of <paramref name="layerCount"/> layers.</summary>
    public static int[] Parse(string text, int layerCount)
    {
        ArgumentNullException.ThrowIfNull(text);
        if (string.Equals(text.Trim(), "all", StringComparison.OrdinalIgnoreCase))
        {
            return Enumerable.Range(0, layerCount).ToArray();
        }
        var layers = new List<int>();
        foreach (string part in text.Split([';', ','], StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int layer))
            {
                throw new InputException($"invalid layers '{text}': expected 'all' or layer numbers separated by ';', e.g. 2;10;18");
            }
            if (layer >= layerCount)
            {
                throw new InputException($"invalid layers '{text}': layer {layer} does not exist (the model has layers 0..{layerCount - 1})");
            }
            if (layers.Contains(layer))
            {
                throw new InputException($"invalid layers '{text}': layer {layer} is listed twice, which would make two interventions overlap at the same positions");
            }
            layers.Add(layer);
        }
        layers.Sort();
        return [.. layers];
    }
}
