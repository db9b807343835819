// Real headless Chromium (Debian's, driven by playwright-core) pointed at a
// Parley web port, and the few steps every browser test takes: open the app
// in a fresh profile, sign up or log in, open a conversation, send, and read
// what the page shows, always through the accessible names design.md lists.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium, type Locator, type Page } from "playwright-core";
import { CHROMIUM } from "../../scripts/local-services.js";
import { PASSWORD } from "./clients.js";

/** Screenshots the tests keep for a person to look at (git-ignored). */
export const ARTIFACTS = join(process.cwd(), "test-artifacts");

/** Headless Chromium with no sandbox (tests run as root) and no background traffic. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-background-networking"],
  });
}

/** A new page in its own context (its own localStorage: one user), at `url`, with a desktop-sized window. */
export async function openApp(browser: Browser, url: string): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 700 } });
  const page = await context.newPage();
  await page.goto(url);
  return page;
}

async function fillCredentials(page: Page, username: string, password: string): Promise<void> {
  await page.getByRole("textbox", { name: "Username" }).fill(username);
  await page.getByLabel("Password").fill(password);
}

/** Signs `username` up through the form and waits for the chat screen (the `Log out` button). */
export async function signUp(page: Page, username: string, password = PASSWORD): Promise<void> {
  await fillCredentials(page, username, password);
  await page.getByRole("button", { name: "Sign up" }).click();
  await page.getByRole("button", { name: "Log out" }).waitFor();
}

/** Fills the form and clicks `Log in`; the caller waits for what it expects (the chat, or an error). */
export async function logIn(page: Page, username: string, password = PASSWORD): Promise<void> {
  await fillCredentials(page, username, password);
  await page.getByRole("button", { name: "Log in" }).click();
}

/** Opens (or starts) the DM with `peer` through the `New chat with` box. */
export async function openDirect(page: Page, peer: string): Promise<void> {
  await page.getByRole("textbox", { name: "New chat with" }).fill(peer);
  await page.getByRole("button", { name: "Chat", exact: true }).click();
  await page.getByRole("region", { name: `Chat with ${peer}` }).waitFor();
}

/** Types `body` into `Message` and clicks `Send`. */
export async function send(page: Page, body: string): Promise<void> {
  await page.getByRole("textbox", { name: "Message" }).fill(body);
  await page.getByRole("button", { name: "Send" }).click();
}

export const messageList = (page: Page): Locator => page.getByRole("list", { name: "Messages" });
export const conversationList = (page: Page): Locator => page.getByRole("list", { name: "Conversations" });
export const connectionStatus = (page: Page): Locator => page.getByRole("status", { name: "Connection" });

/** The bodies the `Messages` list shows, top to bottom, and whether each is still pending. */
export async function shownMessages(page: Page): Promise<{ body: string; pending: boolean }[]> {
  return messageList(page)
    .getByRole("listitem")
    .evaluateAll((items) =>
      items.map((li) => ({ body: li.querySelector(".body")?.textContent ?? "", pending: li.getAttribute("aria-busy") === "true" })),
    );
}

/** Waits until the shown, acknowledged bodies are exactly `expected` (order and count), or fails naming what was shown. */
export async function waitForMessages(page: Page, expected: string[], timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: { body: string; pending: boolean }[] = [];
  while (Date.now() < deadline) {
    last = await shownMessages(page);
    if (JSON.stringify(last) === JSON.stringify(expected.map((body) => ({ body, pending: false })))) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`timed out waiting for messages ${JSON.stringify(expected)}; shown: ${JSON.stringify(last)}`);
}

/** Waits until `locator`'s text matches `pattern`; returns the text. */
export async function waitForText(locator: Locator, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let text = "";
  while (Date.now() < deadline) {
    text = (await locator.textContent({ timeout: timeoutMs }).catch(() => "")) ?? "";
    if (pattern.test(text)) return text;
    await locator.page().waitForTimeout(50);
  }
  throw new Error(`timed out waiting for ${pattern} ; shown: ${JSON.stringify(text)}`);
}

/** The `Conversations` item whose name is `title`. */
export function conversationItem(page: Page, title: string): Locator {
  return conversationList(page)
    .getByRole("listitem")
    .filter({ has: page.locator(".title", { hasText: new RegExp(`^${title}$`) }) });
}

/** Saves a full-page screenshot as test-artifacts/<name>.png. */
export async function keepScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = join(ARTIFACTS, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
