// Opens keyaudit's HTML report in Debian's chromium (headless, driven by playwright-core) and checks it against
// the JSON report of the same run. Prints one line per problem and exits 1 if there is any; prints a JSON line
// of measurements (`{"ready_ms": …}`) on success.
//
//   node check_html.mjs --html report.html --json report.json --out DIR [--search USER] [--text STRING]…
//   node check_html.mjs --html report.html --bench          (only measures: load → interactive, filter, sort)
//   node check_html.mjs --html report.html --screenshot PNG (only takes the 1280×800 screenshot, for the docs)
//
// Checks: no request other than the file itself; no console error, page error or dialog (an `alert` run by an
// injected name would open one); every `data-figure` equals the JSON report's value at that path; sorting by age
// orders the rows (both ways, the oldest key first when descending); filtering to `fail` shows exactly the
// failing findings and the row count follows; the search box finds `--search`; every `--text` is shown as text;
// there is one script, no <img> and no element the report did not write; no control or bidi-override character is
// in the page's text (names show them escaped, as `\u{1b}`); "show findings" on every OU filters to
// exactly its subtree; without JavaScript every finding is in the table. Writes a 1280×800 screenshot to DIR/report.png.
import { readFileSync, mkdirSync } from "node:fs";
import { resolve, join } from "node:path";
import { pathToFileURL } from "node:url";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const modules = process.env.KEYAUDIT_NODE_MODULES;
if (!modules) {
  console.error("KEYAUDIT_NODE_MODULES is not set: run the tests through scripts/test");
  process.exit(2);
}
const { chromium } = require(join(modules, "playwright-core"));

const args = { text: [] };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i].replace(/^--/, "");
  if (a === "bench") { args.bench = true; continue; }
  if (a === "text") { args.text.push(process.argv[++i]); continue; }
  args[a] = process.argv[++i];
}
const problems = [];
const check = (ok, msg) => { if (!ok) problems.push(msg); };

const browser = await chromium.launch({
  executablePath: process.env.KEYAUDIT_CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
});
const url = pathToFileURL(resolve(args.html)).href;

async function open(javaScriptEnabled) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, javaScriptEnabled });
  const page = await context.newPage();
  page.on("request", (r) => check(r.url() === url, `a request was made: ${r.method()} ${r.url()}`));
  page.on("console", (m) => check(m.type() !== "error" && m.type() !== "warning",
    `console ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  page.on("dialog", async (d) => { problems.push(`a dialog opened (script ran): ${d.message()}`); await d.dismiss(); });
  const start = Date.now();
  await page.goto(url, { waitUntil: "load" });
  if (javaScriptEnabled) { await page.waitForSelector("html[data-ready='1']", { timeout: 30000 }); }
  return { context, page, readyMs: Date.now() - start };
}

const visibleRows = (page) => page.$$eval("#findings tbody tr", (rows) =>
  rows.filter((r) => !r.hidden).map((r) => Array.from(r.cells, (c) => ({ t: c.textContent, s: c.getAttribute("data-s") }))));
const column = async (page, name) => page.$$eval("#findings thead th", (ths, n) =>
  ths.findIndex((th) => th.getAttribute("data-col") === n), name);

// The page lays out a page of matching rows at a time (`data-page`, 250) ("Show more", "Show all").
const pageSize = (page) => page.$eval("#findings", (t) => Number(t.getAttribute("data-page")));
async function showAll(page) {
  if (await page.isVisible("#pager")) { await page.click("#all"); }
}

async function timed(fn) { const t = Date.now(); await fn(); return Date.now() - t; }

if (args.screenshot) {
  const { page } = await open(true);
  await page.screenshot({ path: args.screenshot });
  await browser.close();
  process.exit(problems.length ? 1 : 0);
}

if (args.bench) {
  const { page, readyMs } = await open(true);
  const rows = await page.$$eval("#findings tbody tr", (r) => r.length);
  check((await visibleRows(page)).length === Math.min(await pageSize(page), rows), "one page of rows at first");
  const filterMs = await timed(() => page.selectOption("select[data-filter=verdict]", "fail"));
  const sortMs = await timed(() => page.click("#findings th[data-col=age] button"));
  const searchMs = await timed(() => page.fill("#search", "zzz-no-such-user"));
  console.log(JSON.stringify({ rows, ready_ms: readyMs, filter_ms: filterMs, sort_ms: sortMs, search_ms: searchMs }));
  await browser.close();
  process.exit(problems.length ? 1 : 0);
}

const report = JSON.parse(readFileSync(args.json, "utf8"));
const findings = report.findings;
const { page, readyMs } = await open(true);
mkdirSync(args.out, { recursive: true });
await page.screenshot({ path: join(args.out, "report.png") });

// Figures: every number on the page that has a JSON twin.
const figures = await page.$$eval("[data-figure]", (els) => els.map((e) => [e.getAttribute("data-figure"), e.textContent]));
check(figures.length >= 10, `only ${figures.length} figures are marked`);
for (const [path, shown] of figures) {
  let v = report;
  for (const part of path.split(".")) { v = v == null ? undefined : (part === "length" ? v.length : v[part]); }
  check(v !== undefined && String(v) === shown.trim(), `figure ${path}: the page shows ${JSON.stringify(shown)}, the JSON has ${JSON.stringify(v)}`);
}

// Layout: "What to do" beside "By rule" reads as compactly as a list: one line a row, never stretched to the height of
// the table beside it.
const actionRows = await page.$$eval("#rules .pair > table:nth-of-type(2) tbody tr", (rows) => rows.map((r) => r.getBoundingClientRect().height));
check(actionRows.length > 0, "no triage-action table beside the rules");
check(actionRows.every((h) => h <= 40), `the triage actions' rows are stretched: ${actionRows.map(Math.round).join(", ")} px high`);

// Paging: one page of rows at first, all of them on "Show all".
const PAGE = await pageSize(page);
check(PAGE === 250, `page size ${PAGE}`);
const firstPage = (await visibleRows(page)).length;
check(firstPage === Math.min(PAGE, findings.length), `${firstPage} rows shown at first, ${findings.length} findings`);
check((await page.isVisible("#pager")) === findings.length > PAGE, "the pager is shown exactly when rows are held back");
await showAll(page);
check((await visibleRows(page)).length === findings.length, "Show all shows every finding");

// Sorting by age, both ways.
const ageCol = await column(page, "age");
await page.click("#findings th[data-col=age] button");
let ages = (await visibleRows(page)).map((r) => Number(r[ageCol].s));
check(ages.every((a, i) => i === 0 || ages[i - 1] <= a), "sorted by age ascending: rows out of order");
await page.click("#findings th[data-col=age] button");
ages = (await visibleRows(page)).map((r) => Number(r[ageCol].s));
check(ages.every((a, i) => i === 0 || ages[i - 1] >= a), "sorted by age descending: rows out of order");
const oldest = Math.max(...findings.map((f) => f.age_seconds ?? -1));
check(ages[0] === oldest, `the oldest key first: ${ages[0]} != ${oldest}`);
check(ages.length === findings.length, `${ages.length} rows, ${findings.length} findings`);

// Filtering to fail.
const verdictCol = await column(page, "verdict");
await page.selectOption("select[data-filter=verdict]", "fail");
await showAll(page);
const failing = await visibleRows(page);
const wantFail = findings.filter((f) => f.verdict === "fail").length;
check(failing.length === wantFail, `filter fail: ${failing.length} rows, the JSON has ${wantFail} failing findings`);
check(failing.every((r) => r[verdictCol].t === "fail"), "filter fail: a row that does not fail is shown");
check((await page.textContent("#shown")) === String(wantFail), "the row count does not follow the filter");
await page.click("button[type=reset]");
await page.waitForFunction((n) => document.getElementById("shown").textContent === String(n), findings.length);

// "show findings" on each OU: the table filtered to exactly that subtree's findings (some OUs have none). A merged
// report's tree holds each organization's OUs under its id (a standalone account under its own id).
// Names are shown with control and bidi-override characters escaped (`\u{1b}`), as the report writes them.
const shown = (s) => s == null ? s
  : s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
const treePath = (f) => shown(report.run.scope !== "merged" ? f.ou_path
  : f.organization_id ? `/${f.organization_id}${f.ou_path ?? "/Root"}` : `/${f.account_id}`);
const picks = await page.$$eval("button.pick", (bs) => bs.map((b) => b.getAttribute("data-ou")));
const ouCol = await column(page, "ou");
for (const [i, ou] of picks.entries()) {
  await page.$$eval("button.pick", (bs, n) => bs[n].click(), i);
  await showAll(page);
  const rows = await visibleRows(page);
  const want = findings.map(treePath).filter((p) => p === ou || (p || "").startsWith(ou + "/")).length;
  check(rows.length === want, `show findings of ${ou}: ${rows.length} rows, ${want} findings in that subtree`);
  check(rows.every((r) => r[ouCol].t === ou || r[ouCol].t.startsWith(ou + "/")), `show findings of ${ou}: a row outside it`);
}
check(picks.length > 0, "no OU to pick");
await page.click("button[type=reset]");
await page.waitForFunction((n) => document.getElementById("shown").textContent === String(n), findings.length);

// Search.
if (args.search) {
  const userCol = await column(page, "user");
  await page.fill("#search", args.search);
  await showAll(page);
  const found = await visibleRows(page);
  const want = findings.filter((f) => f.user_name === args.search).length;
  check(want > 0 && found.length === want, `search ${args.search}: ${found.length} rows, ${want} findings`);
  check(found.every((r) => r[userCol].t === args.search), `search ${args.search}: another user is shown`);
  await page.fill("#search", "");
}

// Hostile names: shown as text, nothing of theirs in the DOM.
const bodyText = await page.innerText("body");
for (const t of args.text) { check(bodyText.includes(t), `not shown as text: ${t}`); }
// (innerText itself writes tabs and line breaks between cells.)
check(!/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/.test(bodyText),
  "a control or bidi-override character is in the page's text (it must be shown escaped)");
check((await page.$$("script")).length === 2, "more than the report's own two scripts in the page");
check((await page.$$("img, iframe, object, embed, link[rel=stylesheet], base")).length === 0, "an element the report does not write");

// Without JavaScript: the whole table is there, the controls are not.
const nojs = await open(false);
const rowsNoJs = await nojs.page.$$eval("#findings tbody tr", (r) => r.length);
check(rowsNoJs === findings.length, `without JavaScript: ${rowsNoJs} rows, ${findings.length} findings`);
check(!(await nojs.page.isVisible("#controls")), "without JavaScript the filter controls are shown (they cannot work)");
await nojs.context.close();

await browser.close();
for (const p of problems) { console.log(p); }
if (problems.length === 0) { console.log(JSON.stringify({ ready_ms: readyMs, figures: figures.length })); }
process.exit(problems.length ? 1 : 0);
