// Opens PAGE (a page on some origin that plays a playgate master with
// hls.js and credentials) in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) and prints what the page saw as one JSON line:
//   {"levels":[360,480],"time":T,"error":null|"networkError/manifestLoadError"}
// Usage: node web/tests/cors.mjs PAGE_URL
import { launch } from "./browser.mjs";

const [page_url] = process.argv.slice(2);
if (!page_url) {
  console.error("usage: cors.mjs PAGE_URL");
  process.exit(2);
}
const browser = await launch();
let result;
try {
  const page = await browser.newPage();
  const logs = [];
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  await page.goto(page_url);
  // Done when it errs, or when playback passed 1.5 s (1 s segments).
  await page.waitForFunction(
    () => window.result && (window.result.error || window.result.time > 1.5),
    null,
    { timeout: 30000 },
  ).catch(() => {});
  result = await page.evaluate(() => window.result);
  result.console = logs.slice(-10);
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
