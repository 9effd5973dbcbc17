/**
 * The browsers of the Firefox e2e test, both driven by puppeteer-core (Playwright cannot drive a stock Firefox):
 * Debian's firefox-esr over WebDriver BiDi, and Chromium over CDP for the reference run.
 *
 * Firefox exposes WebGPU on Linux behind two prefs, written to the fresh profile's user.js that puppeteer creates
 * for every launch (beside its own prefs: no first-run pages, no updates, no telemetry, no network beyond the page).
 * Without a GPU, Firefox's wgpu needs a Vulkan driver: SwiftShader's, which ships with Debian's chromium (the CPU
 * driver the Chromium e2e tests get too).
 */
import { existsSync } from 'node:fs';
import { dirname } from 'node:path';
import puppeteer from 'puppeteer-core';

/** The Firefox to drive: FIREFOX_PATH, else Debian's firefox-esr. */
export const FIREFOX_PATH = process.env.FIREFOX_PATH ?? '/usr/bin/firefox-esr';
/** The Chromium of the reference run: CHROME_PATH, else Debian's chromium (as playwright.config.ts). */
export const CHROME_PATH = process.env.CHROME_PATH ?? '/usr/bin/chromium';

/** SwiftShader's Vulkan ICD, beside the Chromium that ships it. */
const SWIFTSHADER_ICDS = [
  `${dirname(CHROME_PATH)}/vk_swiftshader_icd.json`,
  '/usr/lib/chromium/vk_swiftshader_icd.json',
];

/**
 * The Vulkan driver Firefox's wgpu gets: VK_ICD_FILENAMES (or VK_DRIVER_FILES) when the caller set one, a real
 * GPU's for instance; else SwiftShader, so the test runs alike on every machine. null when there is none.
 */
export function vulkanDriver() {
  const own = process.env.VK_ICD_FILENAMES || process.env.VK_DRIVER_FILES;
  if (own) return { icd: own, swiftshader: false };
  const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
  return icd ? { icd, swiftshader: true } : null;
}

/** Why the Firefox e2e test cannot run here (and what to install), or null when it can. */
export function firefoxMissing() {
  if (!existsSync(FIREFOX_PATH))
    return `${FIREFOX_PATH} is not installed (Debian: apt-get install firefox-esr; or set FIREFOX_PATH)`;
  if (!vulkanDriver())
    return `no Vulkan driver for Firefox's WebGPU: SwiftShader's vk_swiftshader_icd.json ships with Debian's chromium (apt-get install chromium), or set VK_ICD_FILENAMES`;
  if (!existsSync(CHROME_PATH))
    return `${CHROME_PATH} (the reference run) is not installed (apt-get install chromium; or set CHROME_PATH)`;
  return null;
}

/** What the test needs from Firefox, on top of puppeteer's prefs (which keep it quiet and off the network). */
export const FIREFOX_PREFS = {
  // WebGPU: off by default on Linux in Firefox 153 (ESR); software adapters are on wgpu's blocklist.
  'dom.webgpu.enabled': true,
  'gfx.webgpu.ignore-blocklist': true,
  // Nothing but the page: no welcome or what's-new pages, no telemetry, studies or connectivity checks.
  'browser.aboutwelcome.enabled': false,
  'trailhead.firstrun.didSeeAboutWelcome': true,
  'toolkit.telemetry.enabled': false,
  'toolkit.telemetry.unified': false,
  'toolkit.telemetry.server': '',
  'datareporting.usage.uploadEnabled': false,
  'app.shield.optoutstudies.enabled': false,
  'app.normandy.enabled': false,
  'network.captive-portal-service.enabled': false,
  'network.connectivity-service.enabled': false,
  'network.dns.disablePrefetch': true,
  'network.prefetch-next': false,
  'browser.safebrowsing.update.enabled': false,
  'browser.region.network.url': '',
  'browser.region.update.enabled': false,
  'extensions.getAddons.showPane': false,
  'extensions.htmlaboutaddons.recommendations.enabled': false,
  // Downloads are saved without asking (the test also sets their folder through WebDriver BiDi).
  'browser.download.folderList': 2,
  'browser.download.useDownloadDir': true,
  'browser.download.always_ask_before_handling_new_types': false,
  'browser.download.alwaysOpenPanel': false,
};

/** The window both browsers get (as playwright.config.ts). */
const VIEWPORT = { width: 1360, height: 900 };

/**
 * Headless Firefox with WebGPU on a fresh profile, over WebDriver BiDi. Returns the browser, its version and the
 * Vulkan driver it was given.
 */
export async function launchFirefox() {
  const vulkan = vulkanDriver();
  const env = { ...process.env };
  if (vulkan) env.VK_ICD_FILENAMES = vulkan.icd;
  const browser = await puppeteer.launch({
    browser: 'firefox',
    protocol: 'webDriverBiDi',
    executablePath: FIREFOX_PATH,
    headless: true,
    env,
    defaultViewport: VIEWPORT,
    extraPrefsFirefox: FIREFOX_PREFS,
    protocolTimeout: 5 * 60_000,
    timeout: 90_000,
    dumpio: process.env.FIREFOX_DUMPIO === '1',
  });
  return { browser, version: await browser.version(), vulkan };
}

/** Headless Chromium with WebGPU (SwiftShader without a GPU), over CDP, with playwright.config.ts's flags. */
export async function launchChromium() {
  const browser = await puppeteer.launch({
    browser: 'chrome',
    executablePath: CHROME_PATH,
    headless: true,
    defaultViewport: VIEWPORT,
    args: [
      '--no-sandbox',
      '--enable-unsafe-webgpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
    protocolTimeout: 5 * 60_000,
    timeout: 90_000,
  });
  return { browser, version: await browser.version() };
}
