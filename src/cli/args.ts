// A small flag parser for `whittle` commands: `--flag`, `--key value`, `--key=value`, positionals.
// Unknown flags are an error (a typo should not silently change what runs).

export interface Parsed {
  flags: Record<string, string | true>;
  positional: string[];
}

/** `spec` names each accepted flag: 'bool' takes no value, 'string' takes one. */
export function parseArgs(args: string[], spec: Record<string, 'bool' | 'string'>): Parsed {
  const flags: Record<string, string | true> = {};
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const key = a.slice(2, eq < 0 ? undefined : eq);
    const kind = spec[key];
    if (!kind) throw new UsageError(`unknown option --${key}`);
    if (kind === 'bool') {
      if (eq >= 0) throw new UsageError(`--${key} takes no value`);
      flags[key] = true;
    } else {
      const v = eq >= 0 ? a.slice(eq + 1) : args[++i];
      if (v === undefined) throw new UsageError(`--${key} needs a value`);
      flags[key] = v;
    }
  }
  return { flags, positional };
}

export class UsageError extends Error {}
