using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;

namespace NativeReft.Bench;

/// <summary>Adds a Tokens/s column: benchmarks whose operation is one token report 1 / mean.</summary>
public sealed class TokensPerSecondConfig : ManualConfig
{
    public TokensPerSecondConfig() => AddColumn(new TokensPerSecondColumn());

    private sealed class TokensPerSecondColumn() : BenchColumn(nameof(TokensPerSecondColumn), "Tokens/s", 0,
        "Tokens per second (one benchmark operation is one token)")
    {
        public override string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            summary[benchmarkCase]?.ResultStatistics is { } stats ? (1e9 / stats.Mean).ToString("F1", System.Globalization.CultureInfo.InvariantCulture) : "-";
    }
}
