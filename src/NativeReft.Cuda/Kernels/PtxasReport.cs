using System.Text.RegularExpressions;

namespace NativeReft.Cuda;

/// <summary>What ptxas reports for one kernel (an entry function) with -v.</summary>
/// <param name="Kernel">The kernel's name.</param>
/// <param name="Architecture">The architecture it was assembled for.</param>
/// <param name="Registers">Registers per thread.</param>
/// <param name="SharedBytes">Static shared memory per block.</param>
/// <param name="StackFrameBytes">Stack frame per thread (local arrays, calls).</param>
/// <param name="SpillStoreBytes">Bytes spilled to local memory per thread.</param>
/// <param name="SpillLoadBytes">Bytes reloaded from spills per thread.</param>
public sealed record KernelResourceUsage(string Kernel, string Architecture, int Registers, int SharedBytes,
    int StackFrameBytes, int SpillStoreBytes, int SpillLoadBytes)
{
    /// <summary>Whether ptxas spilled registers.</summary>
    public bool Spills => SpillStoreBytes > 0 || SpillLoadBytes > 0;
}

/// <summary>
/// Reads ptxas's -v report from an NVRTC log:
/// <code>
/// ptxas info    : Compiling entry function 'rowsumsq_forward' for 'sm_90'
/// ptxas info    : Function properties for rowsumsq_forward
/// ptxas         .     0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
/// ptxas info    : Used 16 registers, 128 bytes smem
/// </code>
/// "Function properties" also appear for device functions that were not inlined; only entries are reported.
/// </summary>
public static partial class PtxasReport
{
    /// <summary>One entry per kernel, in the order ptxas compiled them.</summary>
    public static IReadOnlyList<KernelResourceUsage> Parse(string log)
    {
        ArgumentNullException.ThrowIfNull(log);
        var kernels = new List<KernelResourceUsage>();
        KernelResourceUsage? entry = null;
        string? propertiesOf = null;
        foreach (string line in log.Split('\n'))
        {
            if (EntryLine().Match(line) is { Success: true } e)
            {
                Flush();
                entry = new KernelResourceUsage(e.Groups[1].Value, e.Groups[2].Value, 0, 0, 0, 0, 0);
                propertiesOf = null;
            }
            else if (PropertiesLine().Match(line) is { Success: true } p)
            {
                propertiesOf = p.Groups[1].Value;
            }
            else if (StackLine().Match(line) is { Success: true } s && entry is not null && propertiesOf == entry.Kernel)
            {
                entry = entry with
                {
                    StackFrameBytes = int.Parse(s.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                    SpillStoreBytes = int.Parse(s.Groups[2].Value, System.Globalization.CultureInfo.InvariantCulture),
                    SpillLoadBytes = int.Parse(s.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture),
                };
            }
            else if (UsedLine().Match(line) is { Success: true } u && entry is not null)
            {
                var shared = SharedPart().Match(line);
                entry = entry with
                {
                    Registers = int.Parse(u.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture),
                    SharedBytes = shared.Success ? int.Parse(shared.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) : 0,
                };
            }
        }
        Flush();
        return kernels;

        void Flush()
        {
            if (entry is not null)
            {
                kernels.Add(entry);
                entry = null;
            }
        }
    }

    [GeneratedRegex(@"Compiling entry function '([^']+)' for '([^']+)'")]
    private static partial Regex EntryLine();

    [GeneratedRegex(@"Function properties for (\S+)")]
    private static partial Regex PropertiesLine();

    [GeneratedRegex(@"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")]
    private static partial Regex StackLine();

    [GeneratedRegex(@"Used (\d+) registers")]
    private static partial Regex UsedLine();

    [GeneratedRegex(@"(\d+) bytes smem")]
    private static partial Regex SharedPart();
}
