// A headless browser for tests/http/test_pages.py: Debian's chromium driven by
// playwright-core (never a downloaded browser). One process per pytest session;
// it reads one JSON command per line on stdin and answers one JSON line on
// stdout: {"ok": true, ...} or {"ok": false, "error": "..."}.
// Commands: context {id, js, width, height, bypass_csp}, close {id},
// goto {id, url}, fill {id, selector, value}, click {id, selector},
// submit {id, selector} (click and wait for the navigation), text {id, selector},
// count {id, selector}, attr {id, selector, name}, html {id}, url {id},
// viewport {id, width, height}, screenshot {id, path}, axe {id}, frames {id},
// cookies {id}, quit.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import readline from 'node:readline';

const require = createRequire(import.meta.url);
const axeSource = fs.readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const browser = await chromium.launch({
  executablePath: process.env.ROSTER_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const pages = new Map();
const T = 20000;

function page(id) {
  const p = pages.get(id);
  if (!p) throw new Error(`no context ${id}`);
  return p;
}

async function run(c) {
  switch (c.op) {
    case 'context': {
      if (pages.has(c.id)) await pages.get(c.id).context().close();
      const ctx = await browser.newContext({
        javaScriptEnabled: c.js !== false,
        viewport: { width: c.width || 1280, height: c.height || 900 },
        bypassCSP: !!c.bypass_csp,
      });
      ctx.setDefaultTimeout(T);
      const p = await ctx.newPage();
      pages.set(c.id, p);
      return {};
    }
    case 'close':
      if (pages.has(c.id)) await pages.get(c.id).context().close();
      pages.delete(c.id);
      return {};
    case 'goto': {
      const r = await page(c.id).goto(c.url, { waitUntil: 'load' });
      return { status: r ? r.status() : null, headers: r ? r.headers() : {}, url: page(c.id).url() };
    }
    case 'fill':
      await page(c.id).fill(c.selector, c.value);
      return {};
    case 'click':
      await page(c.id).click(c.selector);
      return {};
    case 'submit': {
      const p = page(c.id);
      const [r] = await Promise.all([
        p.waitForNavigation({ waitUntil: 'load' }),
        p.click(c.selector),
      ]);
      return { status: r ? r.status() : null, url: p.url(), headers: r ? r.headers() : {} };
    }
    case 'text':
      return { text: await page(c.id).textContent(c.selector) };
    case 'count':
      return { count: await page(c.id).locator(c.selector).count() };
    case 'attr':
      return { value: await page(c.id).getAttribute(c.selector, c.name) };
    case 'html':
      return { html: await page(c.id).content() };
    case 'url':
      return { url: page(c.id).url() };
    case 'viewport':
      await page(c.id).setViewportSize({ width: c.width, height: c.height });
      return {};
    case 'screenshot':
      await page(c.id).screenshot({ path: c.path, fullPage: true });
      return {};
    case 'axe': {
      const p = page(c.id);
      await p.addScriptTag({ content: axeSource });
      const res = await p.evaluate(async () => {
        const r = await window.axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help,
          nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 5) }));
      });
      return { violations: res };
    }
    case 'frames': {
      const out = [];
      for (const f of page(c.id).frames()) {
        if (f === page(c.id).mainFrame()) continue;
        let html = '';
        try { html = await f.content(); } catch (e) { html = ''; }
        out.push({ url: f.url(), html });
      }
      return { frames: out };
    }
    case 'cookies':
      return { cookies: await page(c.id).context().cookies() };
    case 'quit':
      await browser.close();
      process.stdout.write(JSON.stringify({ ok: true }) + '\n');
      process.exit(0);
    default:
      throw new Error(`unknown op ${c.op}`);
  }
}

const rl = readline.createInterface({ input: process.stdin });
for await (const line of rl) {
  if (!line.trim()) continue;
  let answer;
  try {
    answer = { ok: true, ...(await run(JSON.parse(line))) };
  } catch (e) {
    answer = { ok: false, error: String(e && e.message ? e.message : e) };
  }
  process.stdout.write(JSON.stringify(answer) + '\n');
}
await browser.close();
