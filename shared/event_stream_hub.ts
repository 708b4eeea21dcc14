/**
 * Live console updates as server-sent events (`text/event-stream`): a bounded set of open
 * streams, each sent the same encoded event. A stream whose reader falls behind (more than a few
 * events queued) is closed, and past `maxStreams` a new one gets 503: a flood of console tabs
 * costs a bounded amount of memory and never slows the game.
 *
 * @module
 */

/** Options of {@linkcode EventStreamHub}. */
export interface EventStreamHubOptions {
  /**
   * Most open streams; one more gets 503.
   * @default {32}
   */
  readonly maxStreams?: number;
  /**
   * Events queued for one stream before it is dropped as too slow.
   * @default {8}
   */
  readonly maxQueuedEvents?: number;
}

const encoder = new TextEncoder();

/**
 * The open event streams of one status server.
 *
 * @example
 * ```ts
 * import { EventStreamHub } from "./event_stream_hub.ts";
 * import assert from "node:assert/strict";
 *
 * const hub = new EventStreamHub({ maxStreams: 1 });
 * const first = hub.open();
 * assert.equal(first.status, 200);
 * assert.equal(hub.open().status, 503);
 * hub.publish({ players: 3 });
 * const reader = first.body!.getReader();
 * const { value } = await reader.read();
 * assert.equal(new TextDecoder().decode(value), 'data: {"players":3}\n\n');
 * hub.close();
 * ```
 */
export class EventStreamHub {
  readonly #maxStreams: number;
  readonly #maxQueued: number;
  readonly #streams = new Set<ReadableStreamDefaultController<Uint8Array>>();

  /** @param options Bounds. */
  constructor(options: EventStreamHubOptions = {}) {
    this.#maxStreams = options.maxStreams ?? 32;
    this.#maxQueued = options.maxQueuedEvents ?? 8;
  }

  /** Open streams now. */
  get size(): number {
    return this.#streams.size;
  }

  /** A response streaming every later event, or 503 when `maxStreams` are open. */
  open(first?: unknown): Response {
    if (this.#streams.size >= this.#maxStreams) {
      return new Response("too many console streams\n", {
        status: 503,
        headers: { "retry-after": "5" },
      });
    }
    let self: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        self = controller;
        this.#streams.add(controller);
        if (first !== undefined) controller.enqueue(encode(first));
      },
      cancel: () => {
        if (self !== undefined) this.#streams.delete(self);
      },
    }, { highWaterMark: this.#maxQueued });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  }

  /** Sends `data` (JSON) to every stream; drops the ones too far behind. */
  publish(data: unknown): void {
    if (this.#streams.size === 0) return;
    const bytes = encode(data);
    for (const controller of this.#streams) {
      if ((controller.desiredSize ?? 0) <= 0) {
        this.#streams.delete(controller);
        try {
          controller.close();
        } catch {
          // Already closed by the reader going away: nothing left to release.
        }
        continue;
      }
      controller.enqueue(bytes);
    }
  }

  /** Ends every stream (server stopping). */
  close(): void {
    for (const controller of this.#streams) {
      try {
        controller.close();
      } catch {
        // Already closed by the reader going away: nothing left to release.
      }
    }
    this.#streams.clear();
  }
}

function encode(data: unknown): Uint8Array {
  return encoder.encode(`data: ${JSON.stringify(data)}\n\n`);
}
