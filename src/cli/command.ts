// The shape of one `whittle` command module (src/cli/<name>.ts exports `command`; its one-line
// summary lives in the COMMANDS table of ./main.ts).

export interface Io {
  /** one line (or block) to stdout */
  out(s: string): void;
  /** one line (or block) to stderr */
  err(s: string): void;
  /**
   * The terminal behind stderr, when there is one: raw writes (no newline added) for progress bars
   * redrawn in place with '\r', and its width. Absent when stderr is a file or a pipe.
   */
  tty?: { write(s: string): void; columns: number };
}

/** Io.tty for this process's stderr (undefined when stderr is not a terminal). */
export function stderrTty(): Io['tty'] {
  if (!process.stderr.isTTY) return undefined;
  return { write: (s) => void process.stderr.write(s), get columns() { return process.stderr.columns || 80; } };
}

export interface Command {
  name: string;
  /** the full text for `whittle <name> --help` */
  usage: string;
  /** returns the process exit code: 0 ok, 1 failure, 2 usage error */
  run(args: string[], io: Io): Promise<number>;
}
