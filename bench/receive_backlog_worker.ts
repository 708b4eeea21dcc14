/**
 * The Worker of {@linkcode ReceiveBacklogSampler} (bench/receive_backlog.ts): every
 * `intervalMs` it reads `/proc/net/tcp` and this process's socket descriptors, and writes the
 * unread bytes of this process's sockets and of their peers' ends into the shared buffer, at
 * the slot of the current window. It runs on its own thread so that the table's ~3 ms read
 * never delays the generator's loop. Where `/proc` is missing it samples nothing.
 *
 * @module
 */

import { BACKLOG_MAX_SAMPLES, backlogOf, backlogShared, parseTcpTable } from "./receive_backlog.ts";

/** Inodes of this process's sockets (empty where `/proc` is missing). */
function ownSocketInodes(): Set<number> {
  const inodes = new Set<number>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync("/proc/self/fd");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return inodes;
    throw error;
  }
  for (const entry of entries) {
    let link: string;
    try {
      link = Deno.readLinkSync(`/proc/self/fd/${entry.name}`);
    } catch (error) {
      // Closed between the listing and the read (the listing's own descriptor, say).
      if (error instanceof Deno.errors.NotFound) continue;
      throw error;
    }
    const match = /^socket:\[(\d+)\]$/.exec(link);
    if (match !== null) inodes.add(Number(match[1]));
  }
  return inodes;
}

function readTable(): string | undefined {
  try {
    return Deno.readTextFileSync("/proc/net/tcp");
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** What the sampler posts once: the shared buffer and the interval. */
interface Start {
  readonly buffer: SharedArrayBuffer;
  readonly intervalMs: number;
}

self.addEventListener("message", (event) => {
  const start = (event as MessageEvent<Start>).data;
  const { control, samples } = backlogShared(start.buffer);
  let epoch = -1;
  let own = new Set<number>();
  const timer = setInterval(() => {
    if (Atomics.load(control, 2) === 1) {
      clearInterval(timer);
      return;
    }
    const now = Atomics.load(control, 0);
    // Sockets are found once per window: the clients connect before the first one starts.
    if (now !== epoch) {
      epoch = now;
      own = ownSocketInodes();
    }
    if (own.size === 0) return;
    const text = readTable();
    if (text === undefined) return;
    const backlog = backlogOf(parseTcpTable(text), own);
    if (Atomics.load(control, 0) !== epoch) return;
    const slot = Atomics.load(control, 1);
    if (slot >= BACKLOG_MAX_SAMPLES) return;
    samples[slot] = backlog.ownBytes;
    samples[BACKLOG_MAX_SAMPLES + slot] = backlog.peerBytes;
    Atomics.store(control, 1, slot + 1);
  }, start.intervalMs);
});
