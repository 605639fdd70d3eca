using System.IO.MemoryMappedFiles;

namespace NativeReft.IO;

/// <summary>
/// A read-only memory mapping of a whole file: weights are converted straight from the page cache into backend
/// memory, never read into a managed byte array first.
/// </summary>
public sealed unsafe class MappedFile : IDisposable
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private readonly byte* basePointer;
    private bool disposed;

    private MappedFile(string path, long length)
    {
        Path = path;
        Length = length;
        map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        basePointer = p + view.PointerOffset;
    }

    /// <summary>The mapped file.</summary>
    public string Path { get; }

    /// <summary>File size in bytes.</summary>
    public long Length { get; }

    /// <summary>Maps <paramref name="path"/>; a missing or empty file is a <see cref="ModelFormatException"/>.</summary>
    public static MappedFile Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new ModelFormatException(path, "file not found");
        }
        if (info.Length == 0)
        {
            throw new ModelFormatException(path, "file is empty");
        }
        return new MappedFile(path, info.Length);
    }

    /// <summary>
    /// The bytes [offset, offset + count). Throws <see cref="ModelFormatException"/> when the range leaves the file,
    /// so a corrupt header can never read outside the mapping.
    /// </summary>
    public ReadOnlySpan<byte> Bytes(long offset, int count)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        if (offset < 0 || count < 0 || offset > Length - count)
        {
            throw new ModelFormatException(Path,
                $"a read of {count} bytes at offset {offset} runs past the end of the file ({Length} bytes): the file is truncated or its header is corrupt");
        }
        return new ReadOnlySpan<byte>(basePointer + offset, count);
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (disposed)
        {
            return;
        }
        disposed = true;
        view.SafeMemoryMappedViewHandle.ReleasePointer();
        view.Dispose();
        map.Dispose();
    }
}
