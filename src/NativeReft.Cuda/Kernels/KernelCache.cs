using System.Security.Cryptography;
using System.Text;

namespace NativeReft.Cuda;

/// <summary>
/// Compiled kernel images on disk, so a process compiles each kernel file once per source, options,
/// architecture and compiler version (NVRTC takes about a second per file; loading a cached CUBIN, a
/// millisecond). The folder is $XDG_CACHE_HOME/nativereft/kernels, else ~/.cache/nativereft/kernels.
/// </summary>
/// <remarks>
/// The key is a SHA-256 of everything that changes the image: the source, every header, the compile options,
/// the architecture and the compiler's version. Entries are written to a temporary file and renamed into place,
/// so a crashed or concurrent writer never leaves a half-written entry under the real name. Each entry carries
/// its key and a checksum; one that does not verify (truncated, overwritten, from an older format) is compiled
/// again and replaced, never an error. A cache folder that cannot be written only costs the recompiles.
/// </remarks>
public sealed class KernelCache
{
    private const string Magic = "NRKERNEL";
    private const int FormatVersion = 1;

    private readonly IKernelCompiler compiler;

    /// <summary>A cache in <paramref name="directory"/> (default: <see cref="DefaultDirectory"/>) over <paramref name="compiler"/>.</summary>
    public KernelCache(IKernelCompiler compiler, string? directory = null)
    {
        ArgumentNullException.ThrowIfNull(compiler);
        this.compiler = compiler;
        Directory = directory ?? DefaultDirectory();
    }

    /// <summary>The folder holding the entries.</summary>
    public string Directory { get; }

    /// <summary>The compiler behind the cache.</summary>
    public IKernelCompiler Compiler => compiler;

    /// <summary>Compilations this cache ran (misses, corrupt entries included).</summary>
    public int Compilations { get; private set; }

    /// <summary>Entries loaded from disk.</summary>
    public int Hits { get; private set; }

    /// <summary>Entries found corrupt and compiled again.</summary>
    public int CorruptEntries { get; private set; }

    /// <summary>$XDG_CACHE_HOME/nativereft/kernels, else ~/.cache/nativereft/kernels (the temp folder if there is no home).</summary>
    public static string DefaultDirectory()
    {
        string? xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
        if (!string.IsNullOrWhiteSpace(xdg) && Path.IsPathRooted(xdg))
        {
            return Path.Combine(xdg, "nativereft", "kernels");
        }
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        string root = string.IsNullOrEmpty(home) ? Path.GetTempPath() : Path.Combine(home, ".cache");
        return Path.Combine(root, "nativereft", "kernels");
    }

    /// <summary>The entry's file name for <paramref name="source"/> compiled with <paramref name="options"/>.</summary>
    public string EntryPath(KernelSource source, KernelCompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        return Path.Combine(Directory, $"{source.Stem}.{options.Architecture}.{Key(source, options)[..24]}.bin");
    }

    /// <summary>The cache key: a hex SHA-256 of source, headers, options, architecture and compiler version.</summary>
    public string Key(KernelSource source, KernelCompileOptions options)
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentNullException.ThrowIfNull(options);
        var text = new StringBuilder();
        void Add(string part) => text.Append(part.Length).Append(':').Append(part).Append('\n');
        Add($"nativereft kernel cache v{FormatVersion}");
        Add(compiler.Version);
        Add(options.Architecture);
        foreach (string option in options.ToNvrtcOptions())
        {
            Add(option);
        }
        Add(source.FileName);
        Add(source.Text);
        foreach (var header in source.Headers.OrderBy(h => h.Name, StringComparer.Ordinal))
        {
            Add(header.Name);
            Add(header.Text);
        }
        return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text.ToString())));
    }

    /// <summary>The compiled image from disk when a valid entry exists, else compiled now and stored.</summary>
    public CompiledKernel GetOrCompile(KernelSource source, KernelCompileOptions options)
    {
        string key = Key(source, options);
        string path = EntryPath(source, options);
        if (File.Exists(path))
        {
            if (TryRead(path, key, source.FileName) is { } cached)
            {
                Hits++;
                return cached;
            }
            CorruptEntries++;
        }
        var compiled = compiler.Compile(source, options);
        Compilations++;
        TryWrite(path, key, compiled);
        return compiled;
    }

    private static CompiledKernel? TryRead(string path, string key, string fileName)
    {
        try
        {
            byte[] bytes = File.ReadAllBytes(path);
            if (bytes.Length < SHA256.HashSizeInBytes)
            {
                return null;
            }
            var body = bytes.AsSpan(0, bytes.Length - SHA256.HashSizeInBytes);
            if (!SHA256.HashData(body).AsSpan().SequenceEqual(bytes.AsSpan(body.Length)))
            {
                return null;
            }
            using var reader = new BinaryReader(new MemoryStream(bytes, 0, body.Length), Encoding.UTF8);
            if (reader.ReadString() != Magic || reader.ReadInt32() != FormatVersion || reader.ReadString() != key)
            {
                return null;
            }
            string architecture = reader.ReadString();
            var kind = (KernelImageKind)reader.ReadInt32();
            string log = reader.ReadString();
            byte[] image = reader.ReadBytes(reader.ReadInt32());
            return new CompiledKernel(fileName, architecture, kind, image, log) { FromCache = true };
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or EndOfStreamException or FormatException)
        {
            return null;
        }
    }

    private static void TryWrite(string path, string key, CompiledKernel compiled)
    {
        string temporary = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        try
        {
            System.IO.Directory.CreateDirectory(Path.GetDirectoryName(path)!);
            using (var buffer = new MemoryStream())
            {
                using (var writer = new BinaryWriter(buffer, Encoding.UTF8, leaveOpen: true))
                {
                    writer.Write(Magic);
                    writer.Write(FormatVersion);
                    writer.Write(key);
                    writer.Write(compiled.Architecture);
                    writer.Write((int)compiled.Kind);
                    writer.Write(compiled.Log);
                    writer.Write(compiled.Image.Length);
                    writer.Write(compiled.Image);
                }
                byte[] checksum = SHA256.HashData(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
                buffer.Write(checksum);
                using var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write);
                buffer.WriteTo(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A read-only or full cache folder costs a recompile next time, nothing more.
            try
            {
                File.Delete(temporary);
            }
            catch (Exception cleanup) when (cleanup is IOException or UnauthorizedAccessException)
            {
            }
        }
    }
}
