/**
 * The part of `Deno.Conn` the load generator's connections use ({@linkcode BenchSocket}), so a
 * TCP socket and a WebSocket (`bench/raw_websocket.ts`) drive the same read loop and writer.
 *
 * @module
 */

/** The part of `Deno.Conn` the bench connection and its writer use. */
export interface BenchSocket {
  /** Reads into `buffer`; `null` at the end of the stream. */
  read(buffer: Uint8Array): Promise<number | null>;
  /** Writes `bytes` (or a first part); resolves with how many were taken. */
  write(bytes: Uint8Array): Promise<number>;
  /** Closes the stream; a pending read resolves with `null`. */
  close(): void;
}
