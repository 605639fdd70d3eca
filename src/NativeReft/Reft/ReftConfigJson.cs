using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using NativeReft.Backends;

namespace NativeReft.Reft;

/// <summary>The JSON form of <see cref="ReftConfig"/> stored with an intervention artifact.</summary>
public static class ReftConfigJson
{
    /// <summary>The format tag; a reader refuses other formats by name.</summary>
    public const string Format = "nativereft-intervention/1";

    /// <summary>Serializes <paramref name="config"/> (indented, stable key order).</summary>
    public static string Write(ReftConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var json = new JsonObject
        {
            ["format"] = Format,
            ["type"] = config.Type.Name(),
            ["rank"] = config.Rank,
            ["layers"] = new JsonArray([.. config.Layers.Select(l => (JsonNode)l)]),
            ["positions"] = config.Positions.ToString(),
            ["tied"] = config.Tied,
            ["activation"] = config.Activation.ToString().ToLowerInvariant(),
            ["dropout"] = config.Dropout,
            ["dim"] = config.Dim,
            ["base_model"] = config.BaseModel,
        };
        return json.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    /// <summary>Parses the JSON written by <see cref="Write"/>; <paramref name="source"/> names it in errors.</summary>
    public static ReftConfig Read(string text, string source)
    {
        try
        {
            var json = JsonNode.Parse(text)?.AsObject() ?? throw new ModelFormatException(source, "intervention config is empty");
            string format = json["format"]?.GetValue<string>() ?? "";
            if (format != Format)
            {
                throw new ModelFormatException(source, $"intervention format '{format}' is not supported (expected {Format})");
            }
            string Required(string key) => json[key]?.ToString() ?? throw new ModelFormatException(source, $"intervention config is missing '{key}'");
            return new ReftConfig
            {
                Type = InterventionTypes.Parse(Required("type")),
                Rank = int.Parse(Required("rank"), CultureInfo.InvariantCulture),
                Layers = json["layers"]?.AsArray().Select(n => n!.GetValue<int>()).ToArray() ?? throw new ModelFormatException(source, "intervention config is missing 'layers'"),
                Positions = PositionSpec.Parse(Required("positions")),
                Tied = json["tied"]?.GetValue<bool>() ?? true,
                Activation = Enum.Parse<Activation>(Required("activation"), ignoreCase: true),
                Dropout = json["dropout"]?.GetValue<double>() ?? 0,
                Dim = int.Parse(Required("dim"), CultureInfo.InvariantCulture),
                BaseModel = Required("base_model"),
            };
        }
        catch (Exception e) when (e is JsonException or FormatException or InvalidOperationException or ArgumentException or InputException)
        {
            throw new ModelFormatException(source, $"intervention config is invalid ({e.Message})", e);
        }
    }
}
