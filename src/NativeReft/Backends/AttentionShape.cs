namespace NativeReft.Backends;

/// <summary>
/// Layout of a causal GQA attention call. q and output are (Batch * QueryLength, Heads * HeadSize); k and v are
/// (Batch * KeyStride, KvHeads * HeadSize) of which the first KeyLength rows of each batch are used. Query i sits
/// at absolute position QueryOffset + i and sees keys j &lt;= QueryOffset + i whose keyMask entry (Batch * KeyStride,
/// or empty for all) is true. A query that sees no key outputs zeros. Query head h reads KV head h / (Heads / KvHeads).
/// </summary>
/// <param name="Batch">Sequences in the batch.</param>
/// <param name="QueryLength">Query rows per sequence.</param>
/// <param name="KeyLength">Valid key rows per sequence.</param>
/// <param name="KeyStride">Rows per sequence in k and v (the KV cache's capacity, or KeyLength).</param>
/// <param name="QueryOffset">Absolute position of query 0 (KeyLength - QueryLength when appending to a cache).</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads.</param>
/// <param name="HeadSize">Width of one head.</param>
public readonly record struct AttentionShape(
    int Batch, int QueryLength, int KeyLength, int KeyStride, int QueryOffset, int Heads, int KvHeads, int HeadSize)
{
    /// <summary>Throws if the numbers cannot describe a valid call.</summary>
    public void Validate()
    {
        if (Batch <= 0 || QueryLength <= 0 || KeyLength <= 0 || Heads <= 0 || KvHeads <= 0 || HeadSize <= 0
            || KeyStride < KeyLength || QueryOffset < 0 || QueryOffset + QueryLength > KeyLength || Heads % KvHeads != 0)
        {
            throw new ArgumentException($"invalid attention shape {this}");
        }
    }
}
