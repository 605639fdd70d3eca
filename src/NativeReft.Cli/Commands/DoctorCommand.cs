using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using NativeReft.Cuda;

namespace NativeReft.Cli.Commands;

/// <summary>
/// <c>nativereft doctor</c>: what CUDA this machine has (driver, NVRTC, cuBLAS, GPUs, the kernel emulator),
/// then every kernel compiled for the GPU (or for sm_90 without one) with its registers, shared memory and
/// spills. Exit code 0 when the kernels compile, GPU or not; 1 when NVRTC is missing or a kernel fails.
/// </summary>
internal static class DoctorCommand
{
    private const string DefaultArchitecture = "sm_90";

    public static Command Create(TextWriter output, TextWriter error)
    {
        var arch = new Option<string?>("--arch") { Description = $"Compile the kernels for this architecture (sm_80, sm_90, ...). Default: the GPU's, or {DefaultArchitecture} without one." };
        var command = new Command("doctor", "Check the CUDA setup: libraries, GPUs, and a compile of every kernel with its register, shared memory and spill report.")
        {
            arch,
        };
        command.SetAction(parse => Run(parse.GetValue(arch), output, error));
        return command;
    }

    private static int Run(string? architecture, TextWriter output, TextWriter error)
    {
        if (architecture is not null)
        {
            try
            {
                NvrtcCompiler.ParseArchitecture(architecture);
            }
            catch (ArgumentException e)
            {
                throw new InputException($"--arch: {e.Message}");
            }
        }
        var report = CudaSystem.Probe();
        output.WriteLine("Libraries");
        foreach (var library in (LibraryStatus[])[report.Driver, report.Nvrtc, report.Cublas, report.CublasLt])
        {
            output.WriteLine(library.Found
                ? $"  {library.Name,-12} {library.Version} ({library.LoadedFrom})"
                : $"  {library.Name,-12} {library.Problem}");
        }
        output.WriteLine();
        output.WriteLine("GPUs");
        if (report.Devices.Count == 0)
        {
            output.WriteLine($"  none: {report.DeviceProblem}");
        }
        foreach (var device in report.Devices)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  {device.Ordinal}  {device.Name}  compute capability {device.ComputeMajor}.{device.ComputeMinor} ({device.Architecture}), {device.Multiprocessors} SMs, {device.TotalMemoryBytes / (double)(1L << 30):F1} GiB"));
        }
        output.WriteLine();
        output.WriteLine("Kernel emulator");
        if (EmulatorRuntime.IsAvailable)
        {
            using var emulator = EmulatorRuntime.Create();
            output.WriteLine($"  available: {emulator.Name}, kernels/*.cu built with g++ (libnativereft_emu.so); NATIVEREFT_EMU_CHECK=1 guards memory");
        }
        else
        {
            output.WriteLine($"  not available: {EmulatorRuntime.Problem}");
        }
        output.WriteLine();

        if (!report.Nvrtc.Found)
        {
            output.Flush();
            error.WriteLine($"error: cannot compile the kernels: NVRTC {report.Nvrtc.Problem}");
            return 1;
        }
        var gpu = report.Devices.Count > 0 ? report.Devices[0] : null;
        string target = architecture ?? gpu?.Architecture ?? DefaultArchitecture;
        return CompileAll(target, gpu, output, error);
    }

    private static int CompileAll(string architecture, DeviceProperties? gpu, TextWriter output, TextWriter error)
    {
        var compiler = new NvrtcCompiler();
        string resolved = compiler.ResolveArchitecture(architecture);
        // Load on the GPU only when the images are for it: then the device's own numbers are shown too.
        using var runtime = gpu is not null && architecture == gpu.Architecture ? CudaRuntime.Create(gpu.Ordinal) : null;
        output.WriteLine($"Kernels: {compiler.Version}, {architecture}{(resolved != architecture ? $" (compiled as {resolved} PTX: this NVRTC does not know {architecture})" : "")}{(runtime is not null ? $", loaded on {runtime.Name}" : gpu is null ? ", not loaded (no GPU)" : $", not loaded (the GPU is {gpu.Architecture})")}");
        output.WriteLine($"  {"file",-18} {"kernel",-32} {"regs",5} {"smem B",7} {"stack B",8} {"spill B",8}{(runtime is null ? "" : $" {"dev regs",9} {"dev local B",12}")}");
        int failures = 0, kernels = 0, spills = 0;
        var warnings = new List<string>();
        var clock = Stopwatch.StartNew();
        foreach (var source in KernelSources.All)
        {
            CompiledKernel image;
            try
            {
                image = compiler.Compile(source, new KernelCompileOptions(architecture));
            }
            catch (CudaException e)
            {
                failures++;
                output.WriteLine($"  {source.FileName,-18} FAILED");
                error.WriteLine($"error: {source.FileName}: {e.Message}");
                continue;
            }
            warnings.AddRange(image.Warnings.Select(w => $"{source.FileName}: {w}"));
            using var module = runtime?.LoadModule(image);
            if (image.Kind == KernelImageKind.Ptx)
            {
                output.WriteLine($"  {source.FileName,-18} PTX for {image.Architecture}: the driver assembles it at load, so ptxas reports nothing here");
            }
            foreach (var kernel in image.Resources)
            {
                kernels++;
                spills += kernel.Spills ? 1 : 0;
                string line = $"  {source.FileName,-18} {kernel.Kernel,-32} {kernel.Registers,5} {kernel.SharedBytes,7} {kernel.StackFrameBytes,8} {kernel.SpillStoreBytes + kernel.SpillLoadBytes,8}";
                if (module is not null)
                {
                    var attributes = runtime!.GetAttributes(module.GetFunction(kernel.Kernel));
                    line += $" {attributes.Registers,9} {attributes.LocalBytes,12}";
                }
                output.WriteLine(line);
            }
        }
        output.WriteLine();
        foreach (string warning in warnings)
        {
            output.WriteLine($"  warning: {warning}");
        }
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{KernelSources.All.Count} kernel files, {kernels} kernels for {architecture} in {clock.Elapsed.TotalSeconds:F1} s: {failures} failed, {warnings.Count} warnings, {spills} with spills"));
        return failures == 0 ? 0 : 1;
    }
}
