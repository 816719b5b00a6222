// The shape of one `whittle` command module (src/cli/<name>.ts exports `command`; its one-line
// summary lives in the COMMANDS table of ./main.ts).

export interface Io {
  /** one line (or block) to stdout */
  out(s: string): void;
  /** one line (or block) to stderr */
  err(s: string): void;
}

export interface Command {
  name: string;
  /** the full text for `whittle <name> --help` */
  usage: string;
  /** returns the process exit code: 0 ok, 1 failure, 2 usage error */
  run(args: string[], io: Io): Promise<number>;
}
