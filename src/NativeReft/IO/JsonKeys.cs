using System.Text.Json;

namespace NativeReft.IO;

/// <summary>
/// Typed access to the keys of one JSON object, for JSON files the loaders read (HF configs, tokenizer.json, safetensors headers): a missing or null key is "absent",
/// and a value of the wrong JSON type is a <see cref="ModelFormatException"/> that names the key and what it holds.
/// </summary>
internal sealed class JsonKeys
{
    private readonly JsonElement element;
    private readonly string prefix;

    public JsonKeys(JsonElement element, string source, string prefix = "")
    {
        Source = source;
        this.prefix = prefix;
        if (element.ValueKind != JsonValueKind.Object)
        {
            throw new ModelFormatException(source,
                prefix.Length == 0 ? $"must be a JSON object, found {Describe(element)}" : $"key '{prefix.TrimEnd('.')}' must be an object, found {Describe(element)}");
        }
        this.element = element;
    }

    /// <summary>The file the object came from.</summary>
    public string Source { get; }

    /// <summary>Parses JSON text or UTF-8 bytes; invalid JSON is a <see cref="ModelFormatException"/> naming <paramref name="source"/>.</summary>
    public static JsonDocument Parse(ReadOnlyMemory<byte> utf8, string source, string what = "not valid JSON")
    {
        try
        {
            return JsonDocument.Parse(utf8);
        }
        catch (JsonException e)
        {
            throw new ModelFormatException(source, $"{what} ({e.Message})", e);
        }
    }

    /// <summary>Reads and parses the JSON file at <paramref name="path"/>.</summary>
    public static JsonDocument ParseFile(string path) => Parse(File.ReadAllBytes(path), path);

    public int RequiredInt(string key) => Int(key) ?? throw Missing(key);

    public double RequiredDouble(string key) => Double(key) ?? throw Missing(key);

    public int? Int(string key)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw WrongType(key, "an integer", v);
    }

    public double? Double(string key)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        return v.ValueKind == JsonValueKind.Number ? v.GetDouble() : throw WrongType(key, "a number", v);
    }

    public bool? Bool(string key)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        return v.ValueKind is JsonValueKind.True or JsonValueKind.False ? v.GetBoolean() : throw WrongType(key, "true or false", v);
    }

    public string? String(string key)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        return v.ValueKind == JsonValueKind.String ? v.GetString() : throw WrongType(key, "a string", v);
    }

    /// <summary>An array of strings; absent gives an empty array.</summary>
    public string[] Strings(string key)
    {
        if (!TryGet(key, out var v))
        {
            return [];
        }
        if (v.ValueKind != JsonValueKind.Array || v.EnumerateArray().Any(x => x.ValueKind != JsonValueKind.String))
        {
            throw WrongType(key, "an array of strings", v);
        }
        return [.. v.EnumerateArray().Select(x => x.GetString()!)];
    }

    /// <summary>An integer, or the first of an array of integers (HF's <c>eos_token_id</c> may be either).</summary>
    public int? FirstInt(string key)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        if (v.ValueKind == JsonValueKind.Array && v.GetArrayLength() > 0)
        {
            v = v[0];
        }
        return v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? i : throw WrongType(key, "an integer or a list of integers", v);
    }

    /// <summary>An object whose values are all integers (a vocabulary); absent gives null.</summary>
    public Dictionary<string, int>? IntMap(string key) => Map(key, "an object of integers",
        v => v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out int i) ? (true, i) : (false, 0));

    /// <summary>An object whose values are all strings (a weight map); absent gives null.</summary>
    public Dictionary<string, string>? StringMap(string key) => Map(key, "an object of strings",
        v => (v.ValueKind == JsonValueKind.String, v.ValueKind == JsonValueKind.String ? v.GetString()! : ""));

    public JsonKeys? Object(string key) =>
        TryGet(key, out var v) ? new JsonKeys(v, Source, prefix + key + ".") : null;

    /// <summary>The raw value of a present, non-null key.</summary>
    public bool TryGet(string key, out JsonElement value) =>
        element.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    private Dictionary<string, T>? Map<T>(string key, string expected, Func<JsonElement, (bool Ok, T Value)> read)
    {
        if (!TryGet(key, out var v))
        {
            return null;
        }
        if (v.ValueKind != JsonValueKind.Object)
        {
            throw WrongType(key, expected, v);
        }
        var map = new Dictionary<string, T>(StringComparer.Ordinal);
        foreach (var p in v.EnumerateObject())
        {
            var (ok, value) = read(p.Value);
            map[p.Name] = ok ? value : throw new ModelFormatException(Source,
                $"key '{prefix}{key}' must be {expected}, but '{p.Name}' holds {Describe(p.Value)}");
        }
        return map;
    }

    private ModelFormatException Missing(string key) => new(Source, $"missing required key '{prefix}{key}'");

    private ModelFormatException WrongType(string key, string expected, JsonElement found) =>
        new(Source, $"key '{prefix}{key}' must be {expected}, found {Describe(found)}");

    private static string Describe(JsonElement value)
    {
        string text = value.GetRawText();
        return $"{value.ValueKind.ToString().ToLowerInvariant()} {(text.Length > 40 ? text[..40] + "..." : text)}";
    }
}
