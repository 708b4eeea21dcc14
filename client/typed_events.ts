// This module is browser compatible.
/**
 * A small typed event emitter for the client's handles: `on(type, listener)` returns an
 * unsubscribe function, `emit` calls the listeners of a type in order. A listener that throws
 * is logged and the others still run, so application code can never break a connection's frame
 * handler (an EventTarget would report the exception globally instead).
 *
 * It must never let a listener's exception escape `emit`, and never allocate when a type has
 * no listener.
 *
 * @module
 */

import { roleLogger } from "../shared/logging.ts";

const logger = roleLogger("client", "events");

/** A listener of one event type. */
export type Listener<T> = (detail: T) => void;

/**
 * Typed listeners keyed by event name; `Events` maps each name to its detail type.
 *
 * @example
 * ```ts
 * import { TypedEvents } from "./typed_events.ts";
 * import assert from "node:assert/strict";
 *
 * const events = new TypedEvents<{ message: { text: string } }>();
 * const seen: string[] = [];
 * const off = events.on("message", ({ text }) => seen.push(text));
 * events.emit("message", { text: "hi" });
 * off();
 * events.emit("message", { text: "ignored" });
 * assert.deepEqual(seen, ["hi"]);
 * ```
 */
export class TypedEvents<Events extends object> {
  readonly #listeners = new Map<keyof Events, Listener<never>[]>();

  /**
   * Adds a listener.
   *
   * @param type The event name.
   * @param listener Called with each event's detail.
   * @returns A function that removes the listener.
   *
   * @example
   * ```ts
   * import { TypedEvents } from "./typed_events.ts";
   * import assert from "node:assert/strict";
   *
   * const events = new TypedEvents<{ tick: number }>();
   * let total = 0;
   * events.on("tick", (n) => total += n);
   * events.emit("tick", 2);
   * assert.equal(total, 2);
   * ```
   */
  on<K extends keyof Events>(type: K, listener: Listener<Events[K]>): () => void {
    const list = this.#listeners.get(type) ?? [];
    list.push(listener as Listener<never>);
    this.#listeners.set(type, list);
    return () => {
      const current = this.#listeners.get(type);
      if (current === undefined) return;
      const index = current.indexOf(listener as Listener<never>);
      if (index >= 0) current.splice(index, 1);
    };
  }

  /**
   * `true` if `type` has at least one listener (to skip building an unwanted detail).
   *
   * @example
   * ```ts
   * import { TypedEvents } from "./typed_events.ts";
   * import assert from "node:assert/strict";
   *
   * const events = new TypedEvents<{ tick: number }>();
   * assert.equal(events.has("tick"), false);
   * ```
   */
  has(type: keyof Events): boolean {
    return (this.#listeners.get(type)?.length ?? 0) > 0;
  }

  /**
   * Calls every listener of `type` with `detail`; a listener that throws is logged.
   *
   * @param type The event name.
   * @param detail The event's detail.
   *
   * @example A throwing listener does not stop the next one
   * ```ts
   * import { TypedEvents } from "./typed_events.ts";
   * import assert from "node:assert/strict";
   *
   * const events = new TypedEvents<{ tick: number }>();
   * let called = false;
   * events.on("tick", () => {
   *   throw new Error("application bug");
   * });
   * events.on("tick", () => called = true);
   * events.emit("tick", 1);
   * assert.equal(called, true);
   * ```
   */
  emit<K extends keyof Events>(type: K, detail: Events[K]): void {
    const list = this.#listeners.get(type);
    if (list === undefined || list.length === 0) return;
    // A copy only when there are several, so a listener may unsubscribe while being called.
    const listeners = list.length === 1 ? list : list.slice();
    for (const listener of listeners) {
      try {
        (listener as Listener<Events[K]>)(detail);
      } catch (error) {
        logger.error("a {type} listener threw: {error}", { type: String(type), error });
      }
    }
  }
}
