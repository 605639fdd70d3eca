using System.Reflection;
using NativeReft.Cuda;

namespace NativeReft.Tests.Cuda.Headers;

/// <summary>That <see cref="InteropDeclarations"/> covers all of our interop, so the header check misses nothing.</summary>
public sealed class InteropDeclarationsTests
{
    [Test]
    public void Every_interop_enum_is_checked()
    {
        var enums = typeof(Interop).GetNestedTypes(BindingFlags.NonPublic | BindingFlags.Public)
            .Where(type => type.IsEnum);
        Assert.That(enums, Is.SubsetOf(InteropDeclarations.CoveredEnums), "add the new enum to InteropDeclarations.Constants");
    }

    [Test]
    public void Every_struct_passed_to_a_library_is_mirrored()
    {
        var passed = InteropDeclarations.Imports()
            .SelectMany(i => i.Method.GetParameters().Select(p => p.ParameterType))
            .Select(type => type.IsByRef || type.IsPointer ? type.GetElementType()! : type)
            .Where(type => type.IsValueType && !type.IsPrimitive && !type.IsEnum && type != typeof(void))
            .Distinct();
        Assert.That(passed, Is.SubsetOf(InteropDeclarations.Structs.Select(s => s.Type)), "add the struct to InteropDeclarations.Structs");
    }

    [Test]
    public void Screaming_snake_case_matches_the_headers_spelling()
    {
        Assert.That(InteropDeclarations.ScreamingSnake("MaxSharedMemoryPerBlockOptin"), Is.EqualTo("MAX_SHARED_MEMORY_PER_BLOCK_OPTIN"));
        Assert.That(InteropDeclarations.ScreamingSnake("L2CacheSize"), Is.EqualTo("L2_CACHE_SIZE"));
        Assert.That(InteropDeclarations.ScreamingSnake("Compute32FPedantic"), Is.EqualTo("COMPUTE_32F_PEDANTIC"));
    }
}
