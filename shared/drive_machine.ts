// This module is browser compatible.
/**
 * Runs a {@linkcode ProtocolMachine} (shared/machine_action.ts) over a connection: each frame
 * is decoded and handed to the machine with the time (and the raw frame), and the machine's actions are applied
 * in order: `send` queues bytes, `seal` switches to sealed records at once, `derive` runs the
 * async step and feeds its result back, `close` closes (with an Error frame when the action has
 * a code), and the machine's own events go to the adapter. This is the only drive loop of the
 * protocol machines; adapters keep only what is theirs (metrics, logs, timers, wiring).
 *
 * {@linkcode stepMachine} runs a machine without any connection, for tests and examples.
 *
 * @module
 */

import type { FrameTransport } from "./frame_session.ts";
import type {
  CloseAction,
  DeriveAction,
  MachineAction,
  ProtocolMachine,
  SealAction,
  SendAction,
} from "./machine_action.ts";
import { decodePacket } from "./protocol/codec.ts";
import type { Frame } from "./protocol/frame.ts";
import type { Packet } from "./protocol/packets.ts";
import { ErrorCode, type ProtocolError } from "./protocol/protocol_error.ts";

/**
 * Options of {@linkcode driveMachine}: the adapter's part of the work.
 *
 * @typeParam E The machine's own events.
 *
 * @example
 * ```ts
 * import type { DriveMachineOptions } from "./drive_machine.ts";
 *
 * const options: DriveMachineOptions<{ readonly type: "joined" }> = {
 *   now: () => performance.now(),
 *   onEvent: (event) => console.log(event.type),
 * };
 * console.log(typeof options.onEvent);
 * ```
 */
export interface DriveMachineOptions<E extends { readonly type: string }> {
  /**
   * The clock handed to the machine, in ms.
   *
   * @default {performance.now}
   */
  readonly now?: () => number;
  /** Applies one of the machine's own events (called in order, between the other actions). */
  readonly onEvent?: (event: E) => void;
  /** Told of a `close` action just before the connection is closed (to log or count it). */
  readonly onClose?: (action: CloseAction) => void;
  /**
   * Weighs a frame before it is decoded: `false` drops it (e.g. over a rate limit). The
   * adapter does what a dropped frame calls for.
   */
  readonly admit?: (frame: Frame) => boolean;
  /**
   * Told of a `derive` step that rejected (a bug: expected failures are results); the
   * connection is then closed with `Internal`.
   */
  readonly onDeriveError?: (error: unknown) => void;
  /**
   * Told of each `derive` step's work (settled once its result is applied), e.g. so that a
   * server's stop can wait for it. The promise never rejects.
   */
  readonly track?: (work: Promise<void>) => void;
}

/**
 * The handle {@linkcode driveMachine} returns: the adapter applies actions of its own calls
 * into the machine (e.g. a deadline) through it, in the same order and way as the driver.
 *
 * @typeParam D What the machine's `derive` steps yield.
 * @typeParam E The machine's own events.
 *
 * @example
 * ```ts
 * import type { MachineDriver } from "./drive_machine.ts";
 *
 * const apply = (driver: MachineDriver<never>) => driver.apply([{ type: "close", reason: "done" }]);
 * console.log(typeof apply);
 * ```
 */
export interface MachineDriver<D, E extends { readonly type: string } = never> {
  /** Applies `actions` in order, as if the machine had just returned them. */
  apply(actions: readonly MachineAction<D, E>[]): void;
}

/**
 * Starts reading `transport` and runs `machine` on it until the connection closes.
 *
 * @param transport A connection that has no frame handler yet.
 * @param machine The protocol machine.
 * @param options The adapter's part: clock, events, close and error hooks, frame admission.
 * @returns A handle to apply the actions of the adapter's own calls into the machine.
 *
 * @example A Ping answered by a machine on the server side of a loopback connection
 * ```ts
 * import { driveMachine } from "./drive_machine.ts";
 * import type { MachineAction, ProtocolMachine } from "./machine_action.ts";
 * import { decodePacket, encodePacket } from "./protocol/codec.ts";
 * import { connectFrames, listenFrames } from "./transport.ts";
 * import assert from "node:assert/strict";
 *
 * const pong: ProtocolMachine<never> = {
 *   receive: (packet): readonly MachineAction<never>[] =>
 *     "kind" in packet && packet.kind === "Ping"
 *       ? [{ type: "send", frame: encodePacket({ kind: "Pong", value: packet.value }) }]
 *       : [{ type: "close", code: 7, reason: "Ping only" }],
 *   derived: () => [],
 * };
 * const server = listenFrames({ port: 0, onConnection: (c) => driveMachine(c, pong) });
 * const client = await connectFrames({ port: server.addr.port });
 * const answer = Promise.withResolvers<unknown>();
 * client.start((frame) => answer.resolve(decodePacket(frame)));
 * client.send(encodePacket({ kind: "Ping", value: 5 }));
 * assert.deepEqual(await answer.promise, { kind: "Pong", value: 5 });
 * await client.close();
 * await server.close();
 * ```
 */
export function driveMachine<D, E extends { readonly type: string } = never>(
  transport: FrameTransport,
  machine: ProtocolMachine<D, E>,
  options: DriveMachineOptions<E> = {},
): MachineDriver<D, E> {
  const now = options.now ?? (() => performance.now());
  const { admit, onEvent, onClose, onDeriveError, track } = options;

  const derive = (action: DeriveAction<D>): void => {
    const work = action.derive().then(
      (result) => apply(machine.derived(result, now())),
      (error: unknown) => {
        onDeriveError?.(error);
        transport.close({ code: ErrorCode.Internal, message: "internal error" });
      },
    );
    track?.(work);
  };

  const apply = (actions: readonly MachineAction<D, E>[]): void => {
    for (const action of actions) {
      switch (action.type) {
        case "send":
          transport.send((action as SendAction).frame);
          break;
        case "seal":
          // Synchronous, inside the frame handler: the next bytes read are already records.
          if (transport.isOpen) {
            transport.startSealing((action as SealAction).keys);
          }
          break;
        case "derive":
          derive(action as DeriveAction<D>);
          break;
        case "close": {
          const close = action as CloseAction;
          onClose?.(close);
          transport.close(
            close.code === undefined
              ? undefined
              : { code: close.code, message: close.message ?? close.reason },
          );
          return;
        }
        default:
          onEvent?.(action as E);
      }
    }
  };

  transport.start((frame) => {
    if (admit !== undefined && !admit(frame)) return;
    apply(machine.receive(decodePacket(frame), now(), frame));
  });
  return { apply };
}

/**
 * What {@linkcode stepMachine} returns: every action but `derive` (which it has run).
 *
 * @typeParam D What the machine's `derive` steps yield.
 * @typeParam E The machine's own events.
 *
 * @example
 * ```ts
 * import type { SettledAction } from "./drive_machine.ts";
 *
 * const action: SettledAction<number> = { type: "close", reason: "done" };
 * console.log(action.type);
 * ```
 */
export type SettledAction<D, E extends { readonly type: string } = never> = Exclude<
  MachineAction<D, E>,
  DeriveAction<D>
>;

/**
 * Feeds one packet to a machine without a connection and runs its `derive` steps as a driver
 * would (each started at once, its result fed back when it ends), returning every other action
 * in order. For tests and examples.
 *
 * @param machine The machine.
 * @param packet The packet (or decode error).
 * @param now The time passed in, in ms.
 * @returns The settled actions.
 *
 * @example
 * ```ts
 * import { stepMachine } from "./drive_machine.ts";
 * import type { MachineAction, ProtocolMachine } from "./machine_action.ts";
 * import assert from "node:assert/strict";
 *
 * // Waits for a derived number, then closes with it as the reason.
 * const machine: ProtocolMachine<number> = {
 *   receive: (): readonly MachineAction<number>[] => [
 *     { type: "derive", derive: () => Promise.resolve(6 * 7) },
 *   ],
 *   derived: (n: number): readonly MachineAction<number>[] => [
 *     { type: "close", reason: String(n) },
 *   ],
 * };
 * assert.deepEqual(await stepMachine(machine, { kind: "Ping", value: 1 }), [
 *   { type: "close", reason: "42" },
 * ]);
 * ```
 */
export function stepMachine<D, E extends { readonly type: string } = never>(
  machine: ProtocolMachine<D, E>,
  packet: Packet | ProtocolError,
  now = 0,
): Promise<SettledAction<D, E>[]> {
  return settleActions(machine, machine.receive(packet, now), now);
}

/**
 * Runs the `derive` steps among `actions` (see {@linkcode stepMachine}) and returns the rest.
 *
 * @param machine The machine that returned `actions`.
 * @param actions Its actions.
 * @param now The time passed in, in ms.
 * @returns The settled actions.
 *
 * @example
 * ```ts
 * import { settleActions } from "./drive_machine.ts";
 * import type { ProtocolMachine } from "./machine_action.ts";
 * import assert from "node:assert/strict";
 *
 * const machine: ProtocolMachine<never> = { receive: () => [], derived: () => [] };
 * assert.deepEqual(await settleActions(machine, [{ type: "close", reason: "x" }]), [
 *   { type: "close", reason: "x" },
 * ]);
 * ```
 */
export async function settleActions<D, E extends { readonly type: string } = never>(
  machine: ProtocolMachine<D, E>,
  actions: readonly MachineAction<D, E>[],
  now = 0,
): Promise<SettledAction<D, E>[]> {
  const out: SettledAction<D, E>[] = [];
  for (const action of actions) {
    if (action.type === "derive") {
      // Started here, synchronously when it comes first, as the driver starts it.
      const result = await (action as DeriveAction<D>).derive();
      out.push(...await settleActions(machine, machine.derived(result, now), now));
    } else {
      out.push(action as SettledAction<D, E>);
    }
  }
  return out;
}
