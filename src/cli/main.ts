/**
 * The `editeval` command line. One file per subcommand under src/cli/; this file dispatches.
 */
import * as torch from "../torch/index.js";

const HELP = `editeval: edit the knowledge of language models and measure what the editing does to them

Usage: editeval <command> [options]

Commands:
  info       libtorch version, threads, devices
  demo       the embedded study (not built yet: prints what exists so far)
  help       this text

Run 'editeval <command> --help' for a command's options.`;

export async function run(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  switch (cmd) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(HELP);
      return 0;
    case "info": {
      const v = torch.version();
      const info = {
        torch: v.torch,
        intraOpThreads: torch.getNumThreads(),
        cuda: torch.cudaIsAvailable(),
        openblasThreads: process.env.OPENBLAS_NUM_THREADS ?? "(OpenBLAS default: one per core)",
      };
      if (rest.includes("--json")) console.log(JSON.stringify(info));
      else for (const [k, val] of Object.entries(info)) console.log(`${k}: ${val}`);
      return 0;
    }
    case "demo":
      console.log(
        "editeval demo: the embedded study (train a small model on a synthetic world, edit it 0..200 times, " +
          "report) is not built yet. The engine is: try 'editeval info' and 'npm test'.",
      );
      return 0;
    default:
      console.error(`editeval: unknown command '${cmd}'. Run 'editeval help'.`);
      return 2;
  }
}
