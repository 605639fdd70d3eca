using NativeReft.Cuda;
using NativeReft.Tensors;
using NativeReft.Tests.Backends;

namespace NativeReft.Tests.Emulator;

/// <summary>
/// The emulator's CPU GEMM, which stands in for cublasGemmStridedBatchedEx: column-major, transposes, strided
/// batches, f32 or bf16 operands with f32 accumulation, beta accumulating into C; against a float64 loop.
/// </summary>
public sealed unsafe class EmulatorGemmTests
{
    private const int F32 = 0, BF16 = 1; // EMU_TYPE_* in cmake/emulator/emulator_abi.h

    [TestCase(false, false, 7, 5, 33, 1, 0.0f, F32)]
    [TestCase(true, false, 1, 9, 4, 3, 0.0f, F32)]
    [TestCase(false, true, 6, 1, 7, 2, 0.5f, F32)]
    [TestCase(true, true, 33, 7, 5, 2, 1.0f, BF16)]
    public void Matches_a_column_major_reference(bool transA, bool transB, int m, int n, int k, int batch, float beta, int type)
    {
        _ = Emulated.Runtime; // skips (or fails in CI) when the emulator library is missing
        var rng = new Random(m * 100 + n * 10 + k);
        int lda = (transA ? k : m) + 1, ldb = (transB ? n : k) + 2, ldc = m + 1; // padded leading dimensions
        long strideA = (long)lda * (transA ? m : k), strideB = (long)ldb * (transB ? k : n), strideC = (long)ldc * n;
        float[] a = Values(rng, strideA * batch, type), b = Values(rng, strideB * batch, type), c = Values(rng, strideC * batch, F32);
        var expected = new double[c.Length];
        for (int p = 0; p < batch; p++)
        {
            for (int j = 0; j < n; j++)
            {
                for (int i = 0; i < m; i++)
                {
                    double sum = 0;
                    for (int q = 0; q < k; q++)
                    {
                        double av = a[p * strideA + (transA ? q + i * lda : i + q * lda)];
                        double bv = b[p * strideB + (transB ? j + q * ldb : q + j * ldb)];
                        sum += av * bv;
                    }
                    long ci = p * strideC + i + (long)j * ldc;
                    expected[ci] = 1.5 * sum + beta * c[ci];
                }
            }
        }
        // Rows of C between m and ldc are padding the GEMM must not touch.
        for (int p = 0; p < batch; p++)
        {
            for (int j = 0; j < n; j++)
            {
                for (int i = m; i < ldc; i++)
                {
                    expected[p * strideC + i + (long)j * ldc] = c[p * strideC + i + (long)j * ldc];
                }
            }
        }
        ushort[] aBits = a.Select(DTypes.FloatToBF16).ToArray(), bBits = b.Select(DTypes.FloatToBF16).ToArray();
        int status;
        fixed (float* ap = a, bp = b, cp = c)
        fixed (ushort* a16 = aBits, b16 = bBits)
        {
            ulong A = type == BF16 ? (ulong)a16 : (ulong)ap, B = type == BF16 ? (ulong)b16 : (ulong)bp;
            status = Interop.Emulator.emu_gemm_strided_batched(transA ? 1 : 0, transB ? 1 : 0, m, n, k, 1.5f,
                A, type, lda, strideA, B, type, ldb, strideB, beta, (ulong)cp, F32, ldc, strideC, batch);
        }
        Assert.That(status, Is.Zero, Interop.Emulator.LastError());
        new Tolerance(1e-5 * k, 1e-5).AssertClose(c, expected, "emulated gemm");
    }

    [Test]
    public void Invalid_leading_dimensions_are_refused_as_cublas_would()
    {
        _ = Emulated.Runtime;
        int status = Interop.Emulator.emu_gemm_strided_batched(0, 0, 8, 2, 2, 1, 0, F32, lda: 4, 0, 0, F32, 2, 0, 0, 0, F32, 8, 0, 1);
        Assert.That(status, Is.Not.Zero);
        Assert.That(Interop.Emulator.LastError(), Does.Contain("INVALID_VALUE"));
    }

    // bf16 operands are made bf16-exact first, so the reference multiplies exactly what the GEMM reads.
    private static float[] Values(Random rng, long n, int type) => Enumerable.Range(0, (int)n).Select(_ =>
    {
        float x = (float)(rng.NextDouble() * 2 - 1);
        return type == BF16 ? DTypes.BF16ToFloat(DTypes.FloatToBF16(x)) : x;
    }).ToArray();
}
