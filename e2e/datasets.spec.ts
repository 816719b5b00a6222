// Datasets page in real Chromium: a pasted dataset with one bad line → the error names the line
// (and the editor jumps to it); fixed → valid, with token statistics, a length histogram and the
// token view of what the loss covers (tinystories-656k's tokenizer, from the local "Hub"); saved;
// the same file with its bad line kept → saved with "use the valid lines"; a built-in example
// loads. No request leaves localhost, and none at all is made while datasets are handled.
import assert from 'node:assert/strict';
import { test } from '../test/harness.ts';
import { downloadTinyModel, openApp, tinyDataset, workerFetches } from './flows.ts';

test('datasets: bad line named, fixed → valid, stats + histogram + token view, saved, valid-lines option, examples', async () => {
  const s = await openApp('datasets');
  const { page } = s;
  try {
    await downloadTinyModel(s);
    const hubBefore = s.hub.log.length;
    const fetchedBefore = (await workerFetches(page)).length;
    const requestsBefore = s.net.requests.length;

    await page.goto(`${s.url}#datasets`);
    await page.waitForSelector('#ds-model option[value^="hub:"]', { state: 'attached' });
    const lines = tinyDataset(40);
    const good7 = lines[6];
    lines[6] = '{"prompt": "Ben saw a bird.", "completion": " Ben said hello. The end."';
    await page.fill('#ds-name', 'greetings');
    await page.fill('#ds-text', lines.join('\n'));
    await page.waitForSelector('#ds-summary[data-state="invalid"]', { timeout: 30_000 });
    const err = page.locator('#ds-issue-list .issue-error');
    assert.equal(await err.count(), 1, 'one error');
    assert.equal(await err.getAttribute('data-line'), '7', 'the error is on line 7');
    assert.match(await err.innerText(), /line 7/);
    assert.match(await page.locator('#ds-verdict').innerText(), /39 valid examples/);
    assert.ok(await page.isDisabled('#ds-save'), 'an invalid dataset cannot be saved as is');
    assert.match(await page.locator('#ds-use-valid-label').innerText(), /Use the 39 valid lines and leave out line 7/);
    await s.shot('bad-line');

    // the error's line link selects that line in the editor
    await err.locator('button[data-line="7"]').click();
    const sel = await page.$eval('#ds-text', (t) => {
      const ta = t as HTMLTextAreaElement;
      return ta.value.slice(ta.selectionStart, ta.selectionEnd);
    });
    assert.equal(sel, lines[6], 'line 7 is selected in the editor');

    // fix it → valid, with stats, histogram and the token view
    lines[6] = good7;
    await page.fill('#ds-text', lines.join('\n'));
    await page.waitForSelector('#ds-summary[data-state="valid"]', { timeout: 30_000 });
    assert.match(await page.locator('#ds-verdict').innerText(), /^Valid\. 40 lines · 40 valid examples · prompt \/ completion · 0 errors/);
    await page.waitForSelector('#ds-stat-list [data-stat="examples"]');
    assert.equal(await page.locator('#ds-stat-list [data-stat="examples"]').innerText(), '40');
    // no run of this model yet: the time per epoch says it is not measured (never an invented number)
    assert.match(await page.locator('#ds-stat-list [data-stat="epoch-time"]').innerText(), /unknown until a training run/);
    assert.match(await page.locator('#ds-stat-list [data-stat="tokens"]').innerText(), /^\d+ – \d+ \(median \d+/);
    assert.ok((await page.locator('#ds-histogram rect.bar').count()) > 0, 'a histogram');
    await page.waitForSelector('#ds-token-view .tok.trained', { timeout: 30_000 });
    const trained = Number(await page.getAttribute('#ds-token-view', 'data-trained'));
    const total = Number(await page.getAttribute('#ds-token-view', 'data-total'));
    assert.ok(trained > 0 && trained < total, `the loss covers part of the example (${trained} of ${total} tokens)`);
    const trainedText = (await page.locator('#ds-token-view .tok.trained').allInnerTexts()).join('');
    assert.match(trainedText, /said hello\. The end\./, `the completion is trained: "${trainedText}"`);
    assert.doesNotMatch(trainedText, /saw a/, 'the prompt is not trained');
    await page.click('button[aria-label="Next example"]');
    await page.waitForFunction(() => (document.querySelector('#ds-token-line') as HTMLSelectElement).value === '2');
    await s.shot('valid');

    await page.click('#ds-save');
    await page.waitForSelector('#ds-save-note.note-good');
    assert.match(await page.locator('#ds-save-note').innerText(), /Saved "greetings": 40 examples/);
    await page.waitForSelector('#dataset-list [data-dataset] .dataset-name:has-text("greetings")');

    // the broken file again, kept as it is: use the 39 valid lines
    lines[6] = '{"prompt": "Ben saw a bird.", "completion": " Ben said hello. The end."';
    await page.fill('#ds-name', 'greetings with a bad line');
    await page.fill('#ds-text', lines.join('\n'));
    await page.waitForSelector('#ds-summary[data-state="invalid"]');
    await page.check('#ds-use-valid');
    await page.waitForSelector('#ds-save:not([disabled])');
    await page.click('#ds-save');
    await page.waitForSelector('#ds-save-note.note-good');
    assert.match(await page.locator('#ds-save-note').innerText(), /39 examples, 1 line left out/);
    await page.waitForSelector('#dataset-list [data-dataset]:has-text("1 line left out")');

    // a built-in example
    await page.click('[data-example="iso-dates"]');
    await page.waitForFunction(() => /160 valid examples/.test(document.querySelector('#ds-verdict')?.textContent ?? ''), undefined, { timeout: 30_000 });
    assert.equal(await page.getAttribute('#ds-summary', 'data-state'), 'valid');
    await page.waitForSelector('#ds-token-view .tok.trained', { timeout: 30_000 });
    await s.shot('example');

    assert.equal(s.hub.log.length, hubBefore, 'no request to the Hub server while handling datasets');
    assert.equal((await workerFetches(page)).length, fetchedBefore, 'the worker fetched nothing while handling datasets');
    const extra = s.net.requests.slice(requestsBefore).filter((u) => !u.startsWith(s.url));
    assert.deepEqual(extra, [], 'the page requested nothing but its own files');
    assert.deepEqual(s.net.offHost, [], 'no request left localhost');
    assert.deepEqual(s.errors, [], 'no page errors');
  } finally {
    await s.close();
  }
});
