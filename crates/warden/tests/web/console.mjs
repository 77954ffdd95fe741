// The web console in a real browser: Debian's headless Chromium, driven by playwright-core,
// against the daemon tests/web.rs started. Every step waits for what the page shows (no fixed
// sleeps); a step that never comes fails the run with what the page showed instead.
//
// Environment: URL (the daemon's API), TOKEN, PIDFILE (the supervised process's pid file),
// PEER (HOST:PORT of the upstream peer), BREAK (a URL that makes the peer fail its checks),
// SCREENSHOT (where to save a screenshot at the end), CHROMIUM (the browser).
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const url = env("URL");
const token = env("TOKEN");
const pidfile = env("PIDFILE");
const peer = env("PEER");

const pidNow = () => Number(readFileSync(pidfile, "utf8").trim().split(/\s+/)[0]);
const step = (what) => console.log(`step: ${what}`);

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
let failed = false;
const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
const errors = [];
page.on("pageerror", (e) => errors.push(e.message));
// The browser logs each refused request; the one refusal the run asks for is no error.
page.on("console", (m) => {
  if (m.type() === "error" && !/status of 401/.test(m.text())) errors.push(m.text());
});
page.setDefaultTimeout(30000);
try {
  const resource = page.locator('[data-resource="web"]');
  const peerRow = page.locator(`[data-peer="${peer}"]`);

  step("the page shows the resource started");
  await page.goto(url);
  await page.locator('[data-resource="web"][data-state="started"]').waitFor();
  await page.locator("#live.on").waitFor();
  await page.locator(`[data-peer="${peer}"][data-state="UP"]`).waitFor();
  // A mark in the page's memory: gone if the page ever reloads.
  await page.evaluate(() => { window.__notReloaded = true; });
  const first = pidNow();

  step(`kill -9 of the process (${first}) shows as a failure, then a restart`);
  process.kill(first, "SIGKILL");
  await resource.locator("[data-last-failure]").waitFor();
  const failure = await resource.locator("[data-last-failure]").textContent();
  if (!/monitor on .*: not running/.test(failure)) throw new Error(`failure reads ${JSON.stringify(failure)}`);
  await resource.locator("[data-fail-counts]").waitFor();
  await page.locator("#feed li.error", { hasText: "monitor web on" }).first().waitFor();
  await page.locator('[data-resource="web"][data-state="started"]').waitFor();
  const second = pidNow();
  if (second === first) throw new Error("the pid file still names the killed process");
  if (!(await page.evaluate(() => window.__notReloaded === true))) throw new Error("the page reloaded");

  step("cleanup without the right token is refused");
  await resource.getByRole("button", { name: "Cleanup" }).click();
  await page.locator("#token-dialog[open]").waitFor();
  await page.fill("#token-input", "not-the-token");
  await page.click("#token-ok");
  await page.locator("#toast.bad", { hasText: "refused" }).waitFor();
  // Refused: the failure is still counted (the next snapshot still shows it).
  await page.waitForTimeout(1500);
  if ((await resource.locator("[data-fail-counts]").count()) !== 1) throw new Error("a refused cleanup cleared the fail count");

  step("cleanup with the token clears the failure");
  await resource.getByRole("button", { name: "Cleanup" }).click();
  await page.locator("#token-dialog[open]").waitFor();
  await page.fill("#token-input", token);
  await page.click("#token-ok");
  await page.locator("#toast:not(.bad)", { hasText: "cleanup web: done" }).waitFor();
  await resource.locator("[data-fail-counts]").waitFor({ state: "detached" });
  await resource.locator("[data-last-failure]").waitFor({ state: "detached" });

  step("drain and undrain a peer with the token kept");
  await peerRow.getByRole("button", { name: "Drain" }).click();
  await peerRow.locator(".badge", { hasText: "drained" }).waitFor();
  await peerRow.getByRole("button", { name: "Undrain" }).click();
  await peerRow.locator(".badge", { hasText: "drained" }).waitFor({ state: "detached" });

  step("a peer going DOWN turns red");
  const broke = await fetch(env("BREAK"));
  if (!broke.ok) throw new Error(`the peer did not take the break request: ${broke.status}`);
  const down = page.locator(`[data-peer="${peer}"][data-state="DOWN"] .badge`, { hasText: "DOWN" });
  await down.waitFor();
  const colors = await down.evaluate((e) => {
    const s = getComputedStyle(e);
    return [s.color, s.backgroundColor];
  });
  const red = ([r, g, b]) => r > 150 && g < 100 && b < 100;
  const rgb = (c) => (c.match(/\d+/g) || []).map(Number);
  if (!red(rgb(colors[0]))) throw new Error(`DOWN is drawn in ${colors[0]}, not red`);
  await page.locator("#feed li.warn", { hasText: `${peer} is DOWN` }).first().waitFor();
  if (!(await page.evaluate(() => window.__notReloaded === true))) throw new Error("the page reloaded");

  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
  }

  step("readable on a phone: nothing wider than the screen");
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const wide = await page.evaluate(() => document.documentElement.scrollWidth);
  if (wide > 390) throw new Error(`the page is ${wide} px wide on a 390 px screen`);

  if (errors.length) throw new Error(`the page reported errors: ${errors.join("; ")}`);
  console.log("ok: every step passed");
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.message}`);
  const text = await page.locator("main").innerText().catch(() => "(no page)");
  console.error(`the page showed:\n${text}`);
  if (errors.length) console.error(`page errors: ${errors.join("; ")}`);
} finally {
  await browser.close();
}
process.exit(failed ? 1 : 0);
