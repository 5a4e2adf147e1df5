// Charts in a real browser (Debian's Chromium driven by playwright-core): JupyterLab running the chart
// notebook live (a live chart seen to change, every chart drawn by Plotly), the executed notebook
// reopened without running it, and its nbconvert HTML export opened from a file. Screenshots are kept
// in test-output/browser/browser/.
import { after, before, test } from "node:test";
import * as assert from "node:assert/strict";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";
import { type ChildProcess, execFileSync, spawn } from "child_process";
import { chromium, type Browser, type Page } from "playwright-core";
import { python, root, scratch } from "./helpers";

const CHARTS = 11; // Plotly charts in test/fixtures/charts.ipynb once it has run: ten, and the live one's final state
const dir = scratch("browser");
fs.copyFileSync(path.join(__dirname, "fixtures", "charts.ipynb"), path.join(dir, "charts.ipynb"));
const token = "inception-lab-test";
let lab: ChildProcess;
let browser: Browser;
let base = "";

/** User settings for this test only: render every cell (no windowing), so all outputs are in the page. */
function labSettings(): string {
  const settings = path.join(dir, "..", "browser-settings");
  fs.mkdirSync(path.join(settings, "@jupyterlab", "notebook-extension"), { recursive: true });
  fs.writeFileSync(path.join(settings, "@jupyterlab", "notebook-extension", "tracker.jupyterlab-settings"), JSON.stringify({ windowingMode: "none" }));
  return settings;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer().listen(0, "127.0.0.1", () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

before(async () => {
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  lab = spawn(path.join(root, ".venv", "bin", "jupyter"), ["lab", "--no-browser", "--allow-root", `--IdentityProvider.token=${token}`, "--ip=127.0.0.1", `--port=${port}`, "--ServerApp.port_retries=0"], {
    cwd: dir,
    env: { ...process.env, INCEPTION_LAB_CACHE: path.join(dir, "..", "browser-cache"), JUPYTERLAB_SETTINGS_DIR: labSettings() },
    stdio: ["ignore", "ignore", "pipe"],
  });
  let log = "";
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`JupyterLab did not start:\n${log}`)), 60_000);
    lab.stderr!.on("data", (chunk) => {
      log += chunk;
      if (log.includes(`127.0.0.1:${port}/lab`)) {
        clearTimeout(timer);
        resolve();
      }
    });
  });
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
});

after(async () => {
  await browser?.close();
  if (!lab || lab.exitCode !== null) return;
  // Wait for JupyterLab and its kernels to shut down: the next test file may be timing something.
  const exited = new Promise<void>((resolve) => lab.once("exit", () => resolve()));
  lab.kill("SIGTERM");
  const slow = setTimeout(() => lab.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(slow);
});

async function openNotebook(name: string): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${base}/lab/tree/${name}?reset&token=${token}`);
  await page.getByText("TypeScript | Idle").first().waitFor({ timeout: 90_000 });
  return page;
}

// The plotly extension's output node is itself the graph; an HTML chart's graph is a div inside the output.
const CHART_SELECTOR = ".jp-OutputArea-output.js-plotly-plot, .jp-OutputArea-output .js-plotly-plot";
const plotlyCharts = (page: Page) => page.locator(CHART_SELECTOR).count();

test("JupyterLab runs the chart notebook: the live chart changes while training, then every chart is drawn by Plotly", async (t) => {
  const page = await openNotebook("charts.ipynb");
  await page.locator(".lm-MenuBar-itemLabel", { hasText: /^Run$/ }).click();
  await page.locator(".lm-Menu-itemLabel", { hasText: /^Run All Cells$/ }).click();
  // The live chart: Plotly draws it in the training cell's output; its point count must grow.
  const seen = new Set<number>();
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline && seen.size < 3) {
    const points = await page.evaluate(() => {
      const chart = document.querySelector(".jp-OutputArea-output .inception-lab-chart.js-plotly-plot") as (HTMLElement & { data?: { x: unknown[] }[] }) | null;
      return chart?.data?.[0]?.x.length ?? -1;
    });
    if (points > 0) seen.add(points);
    await page.waitForTimeout(250);
  }
  t.diagnostic(`live chart point counts seen: ${[...seen].join(", ")}`);
  assert.ok(seen.size >= 3, `the live chart changed only ${seen.size} times`);
  await page.getByText("TypeScript | Idle").first().waitFor({ timeout: 240_000 });
  await page.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length >= n, [CHART_SELECTOR, CHARTS] as const, { timeout: 120_000 });
  await page.waitForTimeout(500);
  const errors = await page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count();
  assert.equal(errors, 0, "no cell wrote to stderr");
  assert.equal(await plotlyCharts(page), CHARTS);
  await page.screenshot({ path: path.join(dir, "jupyterlab-live.png"), fullPage: true });
  await page.close();
});

test("the executed notebook, reopened without running, shows every chart (no trust needed), and so does its HTML export", async (t) => {
  execFileSync(python, [path.join(root, "scripts", "run_notebook.py"), path.join(dir, "charts.ipynb"), path.join(dir, "executed.ipynb")], {
    env: { ...process.env, INCEPTION_LAB_CACHE: path.join(dir, "..", "browser-cache") },
    stdio: "ignore",
  });
  const size = fs.statSync(path.join(dir, "executed.ipynb")).size;
  t.diagnostic(`notebook with ${CHARTS} charts: ${(size / 1e6).toFixed(2)} MB`);
  assert.ok(size < 3e6, `notebook is ${size} bytes`);

  const page = await openNotebook("executed.ipynb");
  await page.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length >= n, [CHART_SELECTOR, CHARTS] as const, { timeout: 60_000 });
  assert.equal(await plotlyCharts(page), CHARTS);
  await page.screenshot({ path: path.join(dir, "jupyterlab-reopened.png") });
  await page.close();

  execFileSync(path.join(root, ".venv", "bin", "jupyter"), ["nbconvert", "--to", "html", path.join(dir, "executed.ipynb")], { stdio: "ignore" });
  const html = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  await html.goto(`file://${path.join(dir, "executed.html")}`);
  await html.waitForFunction((n) => document.querySelectorAll(".js-plotly-plot").length >= n, CHARTS, { timeout: 60_000 });
  assert.equal(await html.locator(".js-plotly-plot").count(), CHARTS);
  assert.equal(await html.getByText("This chart needs plotly.js").count(), 0);
  await html.screenshot({ path: path.join(dir, "nbconvert-export.png") });
  await html.close();
});

test("every committed tutorial notebook, reopened without running, shows each chart it holds; each stays under 4 MB", async (t) => {
  const notebooks = fs.readdirSync(path.join(root, "notebooks")).filter((name) => name.endsWith(".ipynb")).sort();
  fs.mkdirSync(path.join(dir, "tutorials"), { recursive: true });
  for (const name of notebooks) {
    const file = path.join(root, "notebooks", name);
    const size = fs.statSync(file).size;
    assert.ok(size < 4e6, `${name} is ${(size / 1e6).toFixed(1)} MB`);
    const outputs = JSON.parse(fs.readFileSync(file, "utf8")).cells.flatMap((cell: { outputs?: { data?: object }[] }) => cell.outputs ?? []);
    const charts = outputs.filter((o: { data?: object }) => o.data && "application/vnd.plotly.v1+json" in o.data).length;
    fs.copyFileSync(file, path.join(dir, "tutorials", name));
    const page = await openNotebook(`tutorials/${name}`);
    await page.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length >= n, [CHART_SELECTOR, charts] as const, { timeout: 60_000 });
    assert.equal(await plotlyCharts(page), charts, `${name}: Plotly charts drawn`);
    t.diagnostic(`${name}: ${charts} charts drawn, ${(size / 1e6).toFixed(2)} MB`);
    await page.close();
  }
});
