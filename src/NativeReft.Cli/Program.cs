return NativeReft.Cli.CliApp.Run(args, Console.Out, Console.Error);
