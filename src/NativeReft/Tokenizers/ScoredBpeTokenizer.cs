using System.Text;

namespace NativeReft.Tokenizers;

/// <summary>
/// The SentencePiece-BPE tokenizer of llama2.c (<c>tokenizer.bin</c>) and GGUF's <c>llama</c> tokenizer: a vocabulary
/// of pieces with merge scores. Encoding starts from single code points (falling back to byte pieces
/// <c>&lt;0xXX&gt;</c>) and repeatedly merges the adjacent pair whose merged piece has the highest score, exactly as
/// llama2.c's <c>encode</c>; decoding follows llama2.c's <c>decode</c>.
/// </summary>
public sealed class ScoredBpeTokenizer : ITokenizer
{
    private readonly byte[][] pieces;
    private readonly float[] scores;
    private readonly Dictionary<string, int> ids;
    private readonly int[] byteIds = new int[256];

    /// <summary>Creates a tokenizer from pieces (spaces already as ' ', not '▁') and their scores.</summary>
    public ScoredBpeTokenizer(IReadOnlyList<string> pieces, IReadOnlyList<float> scores, int bosId, int eosId)
    {
        ArgumentNullException.ThrowIfNull(pieces);
        ArgumentNullException.ThrowIfNull(scores);
        if (pieces.Count != scores.Count)
        {
            throw new ArgumentException($"{pieces.Count} pieces but {scores.Count} scores", nameof(scores));
        }
        this.pieces = new byte[pieces.Count][];
        this.scores = [.. scores];
        ids = new Dictionary<string, int>(pieces.Count, StringComparer.Ordinal);
        Array.Fill(byteIds, -1);
        for (int i = 0; i < pieces.Count; i++)
        {
            this.pieces[i] = Encoding.UTF8.GetBytes(pieces[i]);
            ids.TryAdd(pieces[i], i); // first wins, as llama2.c's sorted lookup finds one of the duplicates
            if (TryParseBytePiece(pieces[i], out byte b) && byteIds[b] < 0)
            {
                byteIds[b] = i;
            }
        }
        BosId = bosId;
        EosId = eosId;
    }

    /// <inheritdoc />
    public int VocabSize => pieces.Length;

    /// <inheritdoc />
    public int BosId { get; }

    /// <inheritdoc />
    public int EosId { get; }

    /// <summary>The piece of <paramref name="id"/> as stored (bytes of its UTF-8 text).</summary>
    public string Piece(int id) => Encoding.UTF8.GetString(pieces[id]);

    /// <inheritdoc />
    public int[] Encode(string text, bool addBos, bool addEos)
    {
        ArgumentNullException.ThrowIfNull(text);
        var tokens = new List<int>(text.Length + 3);
        if (addBos)
        {
            tokens.Add(BosId);
        }
        if (text.Length > 0)
        {
            // SentencePiece's dummy prefix: "Hello" is tokenized as " Hello".
            if (ids.TryGetValue(" ", out int space))
            {
                tokens.Add(space);
            }
            AddCodePoints(text, tokens);
        }
        int start = addBos ? 1 : 0;
        MergeBestPairs(tokens, start);
        if (addEos)
        {
            tokens.Add(EosId);
        }
        return [.. tokens];
    }

    /// <inheritdoc />
    public string Decode(ReadOnlySpan<int> tokens)
    {
        var bytes = new List<byte>(tokens.Length * 4);
        int previous = -1;
        foreach (int token in tokens)
        {
            if (token < 0 || token >= pieces.Length)
            {
                throw new ArgumentOutOfRangeException(nameof(tokens), token, $"token id outside the vocabulary (0..{pieces.Length - 1})");
            }
            if (token == BosId || token == EosId)
            {
                previous = token;
                continue;
            }
            ReadOnlySpan<byte> piece = pieces[token];
            // After BOS, SentencePiece strips the leading space of the first piece (llama2.c's decode).
            if ((previous == BosId || previous == -1) && piece.Length > 0 && piece[0] == (byte)' ')
            {
                piece = piece[1..];
            }
            if (TryParseBytePiece(pieces[token], out byte raw))
            {
                bytes.Add(raw);
            }
            else
            {
                bytes.AddRange(piece);
            }
            previous = token;
        }
        return Encoding.UTF8.GetString([.. bytes]);
    }

    private void AddCodePoints(string text, List<int> tokens)
    {
        byte[] utf8 = Encoding.UTF8.GetBytes(text);
        for (int i = 0; i < utf8.Length;)
        {
            int length = Utf8SequenceLength(utf8, i);
            string codePoint = Encoding.UTF8.GetString(utf8, i, length);
            if (ids.TryGetValue(codePoint, out int id))
            {
                tokens.Add(id);
            }
            else
            {
                // Byte fallback: one piece per UTF-8 byte; llama2.c assumes byte pieces start at id 3.
                for (int k = 0; k < length; k++)
                {
                    int byteId = byteIds[utf8[i + k]];
                    tokens.Add(byteId >= 0 ? byteId : utf8[i + k] + 3);
                }
            }
            i += length;
        }
    }

    private void MergeBestPairs(List<int> tokens, int start)
    {
        var merged = new StringBuilder();
        while (true)
        {
            float bestScore = float.NegativeInfinity;
            int bestId = -1;
            int bestIndex = -1;
            for (int i = start; i < tokens.Count - 1; i++)
            {
                merged.Clear();
                merged.Append(Encoding.UTF8.GetString(pieces[tokens[i]]));
                merged.Append(Encoding.UTF8.GetString(pieces[tokens[i + 1]]));
                if (ids.TryGetValue(merged.ToString(), out int id) && scores[id] > bestScore)
                {
                    bestScore = scores[id];
                    bestId = id;
                    bestIndex = i;
                }
            }
            if (bestIndex < 0)
            {
                return;
            }
            tokens[bestIndex] = bestId;
            tokens.RemoveAt(bestIndex + 1);
        }
    }

    private static int Utf8SequenceLength(byte[] utf8, int i)
    {
        // A lead byte followed by continuation bytes (10xxxxxx), at most 4 bytes: llama2.c's grouping.
        int length = 1;
        while (length < 4 && i + length < utf8.Length && (utf8[i + length] & 0xC0) == 0x80)
        {
            length++;
        }
        return length;
    }

    internal static bool TryParseBytePiece(string piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && piece.StartsWith("<0x", StringComparison.Ordinal) && piece[5] == '>'
            && byte.TryParse(piece.AsSpan(3, 2), System.Globalization.NumberStyles.HexNumber, null, out value);
    }

    private static bool TryParseBytePiece(byte[] piece, out byte value)
    {
        value = 0;
        return piece.Length == 6 && TryParseBytePiece(Encoding.ASCII.GetString(piece), out value);
    }
}
