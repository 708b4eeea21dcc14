// This module is browser compatible.
/**
 * The one contract every sans-I/O protocol machine of Sustenet follows (the cluster's client
 * session, the cluster's link to its master, …), after quinn-proto and h11:
 *
 * - **input**: a decoded packet (or the codec's {@linkcode ProtocolError}) with the time it
 *   arrived (`now`, in ms), and the raw frame it came from for a machine that hands frames it
 *   does not handle on (the client's plugins); a machine never reads a clock itself;
 * - **output**: a list of {@linkcode MachineAction}s the driver applies in order: encoded
 *   frames to send (`send`, bytes, never an unencoded packet), an explicit switch to sealed
 *   records (`seal`), an explicit asynchronous step (`derive`: key derivation, a ticket check)
 *   whose result the driver feeds back with {@linkcode ProtocolMachine.derived}, a `close`,
 *   and the machine's own events (anything else, each with its own `type`).
 *
 * `shared/drive_machine.ts` runs a machine over a `FrameTransport`; tests run one without
 * any socket with `stepMachine` from the same module.
 *
 * @module
 */

import type { SealingKeys } from "./frame_session.ts";
import type { Frame } from "./protocol/frame.ts";
import type { Packet } from "./protocol/packets.ts";
import type { ErrorCode, ProtocolError } from "./protocol/protocol_error.ts";

/**
 * How loudly the driver should log a close: a normal end (`debug`), a refusal or timeout
 * (`info`), a misbehaving peer (`warning`), a fault of ours (`error`).
 *
 * @example
 * ```ts
 * import type { CloseLogLevel } from "./machine_action.ts";
 *
 * const levels: CloseLogLevel[] = ["debug", "info", "warning", "error"];
 * console.log(levels.join(" < "));
 * ```
 */
export type CloseLogLevel = "debug" | "info" | "warning" | "error";

/**
 * Queue these encoded frames (one or more whole frames, as `encodePacket` returns them).
 *
 * @example
 * ```ts
 * import type { SendAction } from "./machine_action.ts";
 * import { encodePacket } from "./protocol/codec.ts";
 *
 * const action: SendAction = { type: "send", frame: encodePacket({ kind: "Pong", value: 1 }) };
 * console.log(action.frame.length); // 9: u32 length, type, u32 value
 * ```
 */
export interface SendAction {
  /** Discriminant. */
  readonly type: "send";
  /** The encoded frame bytes. */
  readonly frame: Uint8Array;
}

/**
 * Switch the connection to sealed records now: everything sent after the frames queued before
 * this action is sealed with `keys.sendKey`, and every byte read after the frame being handled
 * is opened with `keys.receiveKey`. The driver applies it synchronously, so no frame of the
 * same read is taken for plaintext.
 *
 * @example
 * ```ts
 * import type { SealAction } from "./machine_action.ts";
 *
 * const action: SealAction = {
 *   type: "seal",
 *   keys: { sendKey: new Uint8Array(32), receiveKey: new Uint8Array(32) },
 * };
 * console.log(action.type);
 * ```
 */
export interface SealAction {
  /** Discriminant. */
  readonly type: "seal";
  /** This side's keys (send = seal what we send, receive = open what we read). */
  readonly keys: SealingKeys;
}

/**
 * Run this asynchronous step (key derivation, a ticket check) and hand its result back with
 * {@linkcode ProtocolMachine.derived}. The machine stays in a waiting state meanwhile: a packet
 * that arrives first is the peer's fault, and a result that comes after a close is ignored by
 * the machine. A rejection is a bug (expected failures are part of the result): the driver
 * logs it and closes with `Internal`.
 *
 * @typeParam D What the step yields.
 *
 * @example
 * ```ts
 * import type { DeriveAction } from "./machine_action.ts";
 *
 * const action: DeriveAction<number> = { type: "derive", derive: () => Promise.resolve(42) };
 * console.log(await action.derive());
 * ```
 */
export interface DeriveAction<D> {
  /** Discriminant. */
  readonly type: "derive";
  /** Starts the step; the driver calls it once, at once. */
  readonly derive: () => Promise<D>;
}

/**
 * Close the connection, first sending `Error(code, message ?? reason)` when `code` is given.
 * The machine is already in its final state; later input yields no action.
 *
 * @example
 * ```ts
 * import type { CloseAction } from "./machine_action.ts";
 *
 * const action: CloseAction = { type: "close", code: 7, reason: "Move before Hello", level: "warning" };
 * console.log(`${action.level}: ${action.reason}`);
 * ```
 */
export interface CloseAction {
  /** Discriminant. */
  readonly type: "close";
  /** The Error code sent before closing; absent = close without an Error frame. */
  readonly code?: ErrorCode;
  /** Why, for our log (never a key, a ticket or a passphrase). */
  readonly reason: string;
  /**
   * What the Error frame says, when the peer must be told less than our log.
   *
   * @default {reason}
   */
  readonly message?: string;
  /**
   * How loudly to log it.
   *
   * @default {"warning"}
   */
  readonly level?: CloseLogLevel;
}

/**
 * What a protocol machine asks of its driver: the four actions every machine shares, plus its
 * own events `E` (each with a `type` other than these four), passed to the adapter as they are.
 *
 * @typeParam D What the machine's `derive` steps yield.
 * @typeParam E The machine's own events.
 *
 * @example
 * ```ts
 * import type { MachineAction } from "./machine_action.ts";
 *
 * type Joined = { readonly type: "joined"; readonly clientId: number };
 * const actions: MachineAction<never, Joined>[] = [
 *   { type: "send", frame: new Uint8Array([0, 0, 0, 1, 0x0a]) },
 *   { type: "joined", clientId: 7 },
 * ];
 * for (const action of actions) {
 *   if (action.type === "joined") console.log("client", action.clientId);
 * }
 * ```
 */
export type MachineAction<D, E extends { readonly type: string } = never> =
  | SendAction
  | SealAction
  | DeriveAction<D>
  | CloseAction
  | E;

/**
 * A sans-I/O protocol machine: decoded packets and async results in, actions out, time passed
 * in. It never touches a socket, a timer or a clock.
 *
 * @typeParam D What its `derive` steps yield.
 * @typeParam E Its own events.
 *
 * @example An echo machine that closes on anything but Ping
 * ```ts
 * import type { MachineAction, ProtocolMachine } from "./machine_action.ts";
 * import { encodePacket } from "./protocol/codec.ts";
 * import type { Packet } from "./protocol/packets.ts";
 * import { ProtocolError } from "./protocol/protocol_error.ts";
 *
 * class Echo implements ProtocolMachine<never> {
 *   receive(packet: Packet | ProtocolError, _now: number): readonly MachineAction<never>[] {
 *     if (packet instanceof ProtocolError || packet.kind !== "Ping") {
 *       return [{ type: "close", code: 7, reason: "only Ping" }];
 *     }
 *     return [{ type: "send", frame: encodePacket({ kind: "Pong", value: packet.value }) }];
 *   }
 *   derived(): readonly MachineAction<never>[] {
 *     return [];
 *   }
 * }
 * console.log(new Echo().receive({ kind: "Ping", value: 1 }, 0)[0].type); // send
 * ```
 */
export interface ProtocolMachine<D, E extends { readonly type: string } = never> {
  /**
   * Handles one decoded packet (or the codec's error for a malformed frame).
   *
   * @param packet The packet or decode error.
   * @param now When it arrived, in ms (any monotonic origin the driver chooses).
   * @param frame The raw frame it was decoded from (the driver passes it; a test stepping a
   * machine may not). Its payload is a view valid only during this call: a machine that puts
   * it in an event (for the client's plugins) says so.
   */
  receive(
    packet: Packet | ProtocolError,
    now: number,
    frame?: Frame,
  ): readonly MachineAction<D, E>[];
  /**
   * Takes the result of a `derive` step this machine asked for.
   *
   * @param result What the step yielded.
   * @param now When it ended, in ms.
   */
  derived(result: D, now: number): readonly MachineAction<D, E>[];
}
