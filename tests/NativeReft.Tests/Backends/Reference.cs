namespace NativeReft.Tests.Backends;

/// <summary>
/// Plain float64 loops for every backend op, written for reading, not speed (llama2.c's run.c style): the
/// oracle the backends are compared with.
/// </summary>
internal static class Reference
{
    public static double[] Embedding(double[] table, int columns, int[] tokens)
    {
        var o = new double[tokens.Length * columns];
        for (int i = 0; i < tokens.Length; i++)
        {
            Array.Copy(table, tokens[i] * columns, o, i * columns, columns);
        }
        return o;
    }

    public static double[] RmsNorm(double[] x, double[] w, int rows, int c, double eps)
    {
        var o = new double[x.Length];
        for (int r = 0; r < rows; r++)
        {
            double ss = 0;
            for (int j = 0; j < c; j++)
            {
                ss += x[r * c + j] * x[r * c + j];
            }
            double rstd = 1 / Math.Sqrt(ss / c + eps);
            for (int j = 0; j < c; j++)
            {
                o[r * c + j] = w[j] * (x[r * c + j] * rstd);
            }
        }
        return o;
    }

    // (m, k) x (n, k)^T
    public static double[] MatMul(double[] x, double[] w, int m, int k, int n)
    {
        var o = new double[m * n];
        for (int i = 0; i < m; i++)
        {
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++)
                {
                    s += x[i * k + p] * w[j * k + p];
                }
                o[i * n + j] = s;
            }
        }
        return o;
    }

    public static double[] Rope(double[] x, int rows, int heads, int headSize, int[] positions, double theta)
    {
        var o = (double[])x.Clone();
        int half = headSize / 2;
        int width = heads * headSize;
        for (int r = 0; r < rows; r++)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < half; i++)
                {
                    double angle = positions[r] / Math.Pow(theta, 2.0 * i / headSize);
                    int a = r * width + h * headSize + i, b = a + half;
                    o[a] = x[a] * Math.Cos(angle) - x[b] * Math.Sin(angle);
                    o[b] = x[b] * Math.Cos(angle) + x[a] * Math.Sin(angle);
                }
            }
        }
        return o;
    }

    /// <summary>Causal GQA attention; q (B*Tq, H*hs), k/v (B*Tk, KVH*hs); queries sit at offset + t.</summary>
    public static double[] Attention(double[] q, double[] k, double[] v, int batch, int tq, int tk, int offset,
        int heads, int kvHeads, int hs, bool[]? keyMask)
    {
        var o = new double[batch * tq * heads * hs];
        for (int b = 0; b < batch; b++)
        {
            for (int h = 0; h < heads; h++)
            {
                int kvh = h / (heads / kvHeads);
                for (int t = 0; t < tq; t++)
                {
                    var scores = new List<(int J, double S)>();
                    for (int j = 0; j <= offset + t; j++)
                    {
                        if (keyMask is not null && !keyMask[b * tk + j])
                        {
                            continue;
                        }
                        double s = 0;
                        for (int i = 0; i < hs; i++)
                        {
                            s += q[((b * tq + t) * heads + h) * hs + i] * k[((b * tk + j) * kvHeads + kvh) * hs + i];
                        }
                        scores.Add((j, s / Math.Sqrt(hs)));
                    }
                    if (scores.Count == 0)
                    {
                        continue;
                    }
                    double max = scores.Max(e => e.S);
                    double sum = scores.Sum(e => Math.Exp(e.S - max));
                    foreach (var (j, s) in scores)
                    {
                        double p = Math.Exp(s - max) / sum;
                        for (int i = 0; i < hs; i++)
                        {
                            o[((b * tq + t) * heads + h) * hs + i] += p * v[((b * tk + j) * kvHeads + kvh) * hs + i];
                        }
                    }
                }
            }
        }
        return o;
    }

    public static double[] SwiGlu(double[] gate, double[] up)
    {
        var o = new double[gate.Length];
        for (int i = 0; i < o.Length; i++)
        {
            o[i] = gate[i] / (1 + Math.Exp(-gate[i])) * up[i];
        }
        return o;
    }

    public static double[] Add(double[] a, double[] b) => a.Zip(b, (x, y) => x + y).ToArray();
}
