/**
 * Driving the live demo page (web/demo.js) in tests: what it puts on `globalThis.sustenetDemo`,
 * and the waits the page tests share (joined, bots seen walking, the player walking). Each wait
 * is bounded by {@linkcode PAGE_WAIT}, never by how fast the page is expected to be.
 */
import type { Page } from "playwright-core";

/** What the page puts on `globalThis.sustenetDemo` (web/demo.js). */
export interface PageDemo {
  state: string;
  cluster: string;
  clientId: number;
  me: { x: number; y: number };
  players: Record<string, { x: number; y: number; playerId: string }>;
  movesReceived: number;
  chat: string[];
  rttMs: number | undefined;
  reconnects: number;
  error: string | undefined;
}

/** The page's global, as seen from inside `page.waitForFunction` / `page.evaluate`. */
export type PageGlobal = { sustenetDemo?: PageDemo };

/** Generous bound for each wait: the machine is shared. */
export const PAGE_WAIT = { timeout: 60_000, polling: 100 } as const;

/** Waits until the page has joined a cluster; returns its state then. */
export async function waitForJoined(page: Page): Promise<PageDemo> {
  await page.waitForFunction(
    () => (globalThis as PageGlobal).sustenetDemo?.state === "joined",
    undefined,
    PAGE_WAIT,
  );
  return await page.evaluate(() => (globalThis as PageGlobal).sustenetDemo!);
}

/** Waits until the page shows other players, then until one of them has moved. */
export async function waitForMovingPlayers(page: Page): Promise<void> {
  await page.waitForFunction(
    () => Object.keys((globalThis as PageGlobal).sustenetDemo!.players).length > 0,
    undefined,
    PAGE_WAIT,
  );
  const before = await page.evaluate(() => (globalThis as PageGlobal).sustenetDemo!.players);
  await page.waitForFunction(
    (before) => {
      const now = (globalThis as PageGlobal).sustenetDemo!.players;
      return Object.entries(now).some(([id, p]) =>
        before[id] !== undefined && (p.x !== before[id].x || p.y !== before[id].y)
      );
    },
    before,
    PAGE_WAIT,
  );
}

/**
 * Clicks the map and holds `key` until the player has walked right; returns where it started.
 *
 * @param key A key the page walks right on (`"d"`, `"ArrowRight"`).
 */
export async function walkRight(page: Page, key: string): Promise<number> {
  await page.locator("#world").click();
  const startX = await page.evaluate(() => (globalThis as PageGlobal).sustenetDemo!.me.x);
  await page.keyboard.down(key);
  await page.waitForFunction(
    (startX) => (globalThis as PageGlobal).sustenetDemo!.me.x > startX + 5,
    startX,
    PAGE_WAIT,
  );
  await page.keyboard.up(key);
  return startX;
}
