/**
 * A {@linkcode ByteChannel} in memory, to run a `FrameSession` (and what drives it) without
 * sockets: what the session writes is recorded, and bytes are fed in through `sink`.
 */

import {
  type ByteChannel,
  ChannelOverflowError,
  type ChannelSink,
  type CloseInfo,
  type PeerAddress,
} from "../shared/frame_session.ts";
import { type Frame, FrameDecoder } from "../shared/protocol/frame.ts";

/** A channel in memory: writes are recorded, and resolve when `hold` is false. */
export class MemoryChannel implements ByteChannel {
  readonly remoteAddr: PeerAddress = { transport: "tcp", hostname: "192.0.2.1", port: 1 };
  readonly writes: Uint8Array[] = [];
  sink: ChannelSink | undefined;
  closedWith: CloseInfo | undefined;
  /** While true, writes never complete (a peer that does not read). */
  hold = false;
  /** When set, a write throws this instead (a transport with its own buffer overflowing). */
  overflow = false;
  readonly #stuck: ((error: Error) => void)[] = [];

  startReading(sink: ChannelSink): void {
    this.sink = sink;
  }

  write(bytes: Uint8Array): Promise<number> {
    if (this.overflow) return Promise.reject(new ChannelOverflowError("buffer above bound"));
    this.writes.push(bytes.slice());
    if (!this.hold) return Promise.resolve(bytes.length);
    // Like a socket: a write stuck on a full buffer fails when the channel is closed.
    const stuck = Promise.withResolvers<number>();
    this.#stuck.push(stuck.reject);
    return stuck.promise;
  }

  pauseReading(_untilMs: number): void {}

  close(info: CloseInfo): Promise<void> {
    this.closedWith = info;
    for (const reject of this.#stuck.splice(0)) reject(new Error("closed"));
    return Promise.resolve();
  }

  classify(): "closed" {
    return "closed";
  }
}

/** The whole frames in `bytes` (plaintext), copied. */
export function framesOf(bytes: Uint8Array): Frame[] {
  const decoder = new FrameDecoder();
  decoder.push(bytes);
  const out: Frame[] = [];
  for (let item = decoder.next(); item !== undefined; item = decoder.next()) {
    if (item instanceof Error) throw item;
    out.push({ type: item.type, payload: item.payload.slice() });
  }
  return out;
}
