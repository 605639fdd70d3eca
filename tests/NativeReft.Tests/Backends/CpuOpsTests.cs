using NativeReft.Backends;
using NativeReft.Backends.Cpu;

namespace NativeReft.Tests.Backends;

/// <summary>The op suite on the float32 CPU backend.</summary>
[TestFixture]
public sealed class CpuF32OpsTests : BackendOpsSuite
{
    private protected override IBackend CreateBackend() => new CpuBackend<float>();

    // Inputs are rounded to float (2^-24 relative); a sum of n terms adds about sqrt(n) roundings of its size.
    private protected override Tolerance ToleranceFor(int terms) => new(1e-6 * Math.Sqrt(terms), 1e-5);
}

/// <summary>
/// The op suite on the float64 CPU backend, which the gradient checks rely on: it must agree with the
/// reference far more tightly than float could.
/// </summary>
[TestFixture]
public sealed class CpuF64OpsTests : BackendOpsSuite
{
    private protected override IBackend CreateBackend() => new CpuBackend<double>();

    // Upload/Download pass through float, so results carry float rounding of the output only.
    private protected override Tolerance ToleranceFor(int terms) => new(1e-7, 1e-7);
}
