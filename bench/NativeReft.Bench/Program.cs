using BenchmarkDotNet.Running;

// Run everything: dotnet run -c Release --project bench/NativeReft.Bench -- --filter '*'
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
