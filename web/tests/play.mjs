// Plays an asset from playgate's /demo page with hls.js in headless
// Chromium (Debian's /usr/bin/chromium, driven by playwright-core) and
// prints what the player saw as one JSON line:
//   {"levels":[{"width":…,"height":…,"bitrate":…,"codecs":…}],"level":N,"time":T,"error":null}
// Usage: node web/tests/play.mjs BASE_URL ASSET TIER SCREENSHOT.png
import { launch } from "./browser.mjs";

const [base, asset, tier, shot] = process.argv.slice(2);
if (!shot) {
  console.error("usage: play.mjs BASE_URL ASSET TIER SCREENSHOT.png");
  process.exit(2);
}
const browser = await launch();
let result;
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const logs = [];
  page.on("console", (m) => logs.push(m.type() + ": " + m.text()));
  const url = `${base}/demo?asset=${encodeURIComponent(asset)}&tier=${encodeURIComponent(tier)}&autoplay=1`;
  await page.goto(url);
  // Playing means time moved past 1.5 s (the clip has 1 s segments).
  await page.waitForFunction(
    () => window.demo && (window.demo.error || (window.demo.ready && window.demo.time > 1.5)),
    null,
    { timeout: 30000 },
  ).catch(() => {});
  result = await page.evaluate(() => window.demo);
  result.console = logs.slice(-20);
  await page.screenshot({ path: shot });
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
