// A minimal sequential test harness (`test(name, fn)`), used instead of node:test: Dawn's Node
// binding crashed under node:test's scheduling here, while plain sequential awaits are stable.
// Each test file is run in its own process by scripts/test.mjs; this prints one line per test
// and a final `N passed, N failed` line.
type Fn = () => void | Promise<void>;
const tests: { name: string; fn: Fn }[] = [];
let scheduled = false;

export function test(name: string, fn: Fn): void {
  tests.push({ name, fn });
  if (!scheduled) {
    scheduled = true;
    setTimeout(run, 0);
  }
}

async function run(): Promise<void> {
  const only = process.env.WHITTLE_TEST_FILTER;
  let passed = 0, failed = 0;
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const t0 = performance.now();
    try {
      await t.fn();
      passed++;
      console.log(`ok - ${t.name} (${(performance.now() - t0).toFixed(0)} ms)`);
    } catch (e) {
      failed++;
      console.log(`not ok - ${t.name}\n  ${String((e as Error)?.stack ?? e).split('\n').join('\n  ')}`);
    }
  }
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}
