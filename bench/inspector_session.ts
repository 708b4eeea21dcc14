/**
 * A Chrome DevTools protocol session with a bench process's V8 inspector (the process runs with
 * `--inspect=127.0.0.1:<port>`): collect garbage and read `Deno.memoryUsage()`, or write a heap
 * snapshot. Memory figures taken through it are what a process retains, not garbage that V8
 * has not collected yet. Loopback only.
 *
 * @module
 */

/** What `Deno.memoryUsage()` says, after a full garbage collection. */
export interface MemorySample {
  readonly rss: number;
  readonly heapTotal: number;
  readonly heapUsed: number;
  readonly external: number;
}

/** A Chrome DevTools protocol session with one process's V8 inspector. */
export class InspectorSession {
  readonly #socket: WebSocket;
  readonly #pending = new Map<number, PromiseWithResolvers<unknown>>();
  #nextId = 1;
  #chunks: string[] | undefined;

  private constructor(socket: WebSocket) {
    this.#socket = socket;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (message.method === "HeapProfiler.addHeapSnapshotChunk") {
        this.#chunks?.push(message.params.chunk);
        return;
      }
      const waiting = this.#pending.get(message.id);
      if (waiting === undefined) return;
      this.#pending.delete(message.id);
      if (message.error !== undefined) waiting.reject(new Error(JSON.stringify(message.error)));
      else waiting.resolve(message.result);
    };
  }

  /** Connects to the inspector listening on `port` (retrying while the process starts). */
  static async open(port: number): Promise<InspectorSession> {
    let url: string | undefined;
    for (let attempt = 0; attempt < 100 && url === undefined; attempt++) {
      try {
        const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
        url = list[0]?.webSocketDebuggerUrl;
      } catch (error) {
        // Refused while the process starts: fetch says so with a TypeError.
        if (!(error instanceof TypeError)) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
    if (url === undefined) throw new Error(`no inspector on 127.0.0.1:${port}`);
    const socket = new WebSocket(url);
    await new Promise((resolve, reject) => {
      socket.onopen = resolve;
      socket.onerror = reject;
    });
    return new InspectorSession(socket);
  }

  /** Sends one protocol command and waits for its result. */
  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#nextId++;
    const waiting = Promise.withResolvers<unknown>();
    this.#pending.set(id, waiting);
    this.#socket.send(JSON.stringify({ id, method, params }));
    return waiting.promise;
  }

  /** Collects garbage (twice: weak callbacks free more) and reads the process's memory. */
  async measure(): Promise<MemorySample> {
    await this.call("HeapProfiler.collectGarbage");
    await this.call("HeapProfiler.collectGarbage");
    const result = await this.call("Runtime.evaluate", {
      expression: "JSON.stringify(Deno.memoryUsage())",
      returnByValue: true,
    }) as { result: { value: string } };
    return JSON.parse(result.result.value);
  }

  /** Writes a heap snapshot (`.heapsnapshot`, for Chrome DevTools) to `path`. */
  async snapshot(path: string): Promise<void> {
    this.#chunks = [];
    await this.call("HeapProfiler.enable");
    await this.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    await Deno.writeTextFile(path, this.#chunks.join(""));
    this.#chunks = undefined;
  }

  /** Closes the session (the process goes on). */
  close(): void {
    this.#socket.close();
  }
}
