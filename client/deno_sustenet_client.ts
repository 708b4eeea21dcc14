/**
 * The Deno {@linkcode DenoSustenetClient}: {@linkcode SustenetClient} with TCP connections and
 * `.pub` key files by default. `@sustenet/sustenet/client` exports it as `SustenetClient`.
 *
 * @module
 */

import { SustenetClient } from "./sustenet_client.ts";
import type { Connector } from "./connector.ts";
import { connectTcp, readKeyFile } from "./tcp_connector.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import type { FrameSessionOptions } from "../shared/frame_session.ts";

/**
 * The Sustenet client for Deno: connects over TCP unless the options name another connector,
 * and reads `{ file }` key pins from disk.
 *
 * @example
 * ```ts ignore
 * import { DenoSustenetClient } from "./deno_sustenet_client.ts";
 *
 * await using client = await DenoSustenetClient.connect({ host: "127.0.0.1", port: 6256 });
 * console.log(await client.listClusters());
 * ```
 */
export class DenoSustenetClient extends SustenetClient {
  /** TCP (`shared/transport.ts`). */
  protected static override defaultConnector: Connector = connectTcp;
  /** The server's ciphers (FFI, `node:crypto`) for WebSocket sessions too. */
  protected static override createRecordCipher: FrameSessionOptions["createRecordCipher"] =
    createRecordCipher;
  /** Small `.pub` files from disk. */
  protected static override readKeyFile: ((path: string) => Promise<string>) | undefined =
    readKeyFile;
}
