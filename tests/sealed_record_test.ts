import assert from "node:assert/strict";
import fc from "fast-check";
import { encodeFrame } from "../shared/protocol/frame.ts";
import {
  type RecordCipher,
  type RecordCounter,
  RecordError,
  WebCryptoRecordCipher,
} from "../shared/record_cipher.ts";
import { createRecordCipher } from "../shared/create_record_cipher.ts";
import { FfiRecordCipher } from "../shared/record_cipher_ffi.ts";
import { HybridRecordCipher, NodeRecordCipher } from "../shared/record_cipher_node.ts";
import {
  DEFAULT_MAX_RECORD_BYTES,
  type RecordReadResult,
  SealedRecordReader,
  SealedRecordWriter,
} from "../shared/sealed_record.ts";
import { concatBytes as concat } from "./_bytes.ts";

const KEY = new Uint8Array(32).fill(0x5a);

function frame(type: number, size: number): Uint8Array {
  return encodeFrame(type, new Uint8Array(size).fill(type));
}

function sealSync(writer: SealedRecordWriter, batch: Uint8Array | Uint8Array[]): Uint8Array {
  const record = writer.seal(batch);
  assert.ok(record instanceof Uint8Array, "a node cipher seals synchronously");
  return record;
}

/** Drains every available plaintext (awaiting asynchronous opens). */
async function drain(reader: SealedRecordReader): Promise<(Uint8Array | RecordError)[]> {
  const out: (Uint8Array | RecordError)[] = [];
  for (;;) {
    const result: RecordReadResult = await reader.next();
    if (result === undefined) return out;
    out.push(result);
    if (result instanceof RecordError) return out;
  }
}

function syncPair(options?: { maxRecordBytes?: number }) {
  const cipher = new NodeRecordCipher(KEY);
  return {
    writer: new SealedRecordWriter(cipher, options),
    reader: new SealedRecordReader(cipher, options),
  };
}

Deno.test("records written in order are read back in order and the counters advance", async () => {
  const { writer, reader } = syncPair();
  const batches = [[frame(1, 3)], [frame(2, 0), frame(3, 10)], [frame(4, 1000)]];
  for (const batch of batches) reader.push(sealSync(writer, batch));
  assert.equal(writer.counter, 3);
  const plaintexts = await drain(reader);
  assert.deepEqual(plaintexts, batches.map(concat));
  assert.equal(reader.counter, 3);
  assert.equal(reader.bufferedBytes, 0);
  assert.equal(reader.error, undefined);
});

Deno.test("a record with any bit flipped fails and the failure is final", () => {
  const { writer } = syncPair();
  const record = sealSync(writer, [frame(9, 40)]);
  const next = sealSync(writer, [frame(9, 1)]);
  // Bits of the ciphertext and tag (the length prefix is covered by its own test).
  for (let bit = 32; bit < record.length * 8; bit += 13) {
    const tampered = record.slice();
    tampered[bit >> 3] ^= 1 << (bit & 7);
    const reader = new SealedRecordReader(new NodeRecordCipher(KEY));
    reader.push(tampered);
    const result = reader.next();
    assert.ok(result instanceof RecordError);
    assert.equal(result.code, "record_auth_failed");
    // Further good bytes cannot revive the stream.
    reader.push(next);
    assert.equal(reader.next(), result);
    assert.equal(reader.error, result);
    assert.equal(reader.bufferedBytes, 0);
  }
});

Deno.test("a replayed, dropped or reordered record fails authentication", async () => {
  const { writer } = syncPair();
  const [r0, r1, r2] = [0, 1, 2].map((i) => sealSync(writer, frame(0x80 + i, 4)));
  const cases: Record<string, Uint8Array[]> = {
    replay: [r0, r0],
    drop: [r0, r2],
    reorder: [r1, r0],
    "replay of an older record": [r0, r1, r0],
  };
  for (const [name, sequence] of Object.entries(cases)) {
    const reader = new SealedRecordReader(new NodeRecordCipher(KEY));
    let last: RecordReadResult;
    for (const record of sequence) {
      reader.push(record);
      last = await reader.next();
    }
    assert.ok(last instanceof RecordError, name);
    assert.equal(last.code, "record_auth_failed", name);
  }
});

Deno.test("an oversize length is refused from its 4 bytes, before any body is buffered", () => {
  for (const length of [DEFAULT_MAX_RECORD_BYTES + 1, 0xffff_ffff]) {
    const reader = new SealedRecordReader(new NodeRecordCipher(KEY));
    const header = new Uint8Array(4);
    new DataView(header.buffer).setUint32(0, length);
    reader.push(header.subarray(0, 2));
    assert.equal(reader.next(), undefined);
    reader.push(header.subarray(2));
    assert.equal(reader.error?.code, "record_too_large");
    assert.equal(reader.bufferedBytes, 0);
    const result = reader.next();
    assert.ok(result instanceof RecordError);
    assert.equal(result.code, "record_too_large");
    reader.push(new Uint8Array(1000));
    assert.equal(reader.bufferedBytes, 0);
  }
  // The bound is configurable and applies exactly.
  const { writer } = syncPair();
  const record = sealSync(writer, frame(1, 95)); // 100 bytes of frame + 16 of tag
  const strict = new SealedRecordReader(new NodeRecordCipher(KEY), { maxRecordBytes: 115 });
  strict.push(record);
  assert.equal((strict.next() as RecordError).code, "record_too_large");
  const exact = new SealedRecordReader(new NodeRecordCipher(KEY), { maxRecordBytes: 116 });
  exact.push(record);
  assert.ok(exact.next() instanceof Uint8Array);
});

Deno.test("a length too short to hold a tag is refused", () => {
  for (const length of [0, 1, 15]) {
    const reader = new SealedRecordReader(new NodeRecordCipher(KEY));
    reader.push(new Uint8Array([0, 0, 0, length, ...new Uint8Array(20)]));
    const result = reader.next();
    assert.ok(result instanceof RecordError);
    assert.equal(result.code, "record_too_small");
  }
});

/** Batches of frame sizes, and where to cut the sealed stream into reads. */
const BATCH_SIZES = fc.array(fc.array(fc.nat({ max: 300 }), { minLength: 1, maxLength: 4 }), {
  minLength: 1,
  maxLength: 8,
});
const CUT_POINTS = fc.array(fc.nat({ max: 10_000 }), { maxLength: 12 });

Deno.test("records arrive intact in any chunking", async () => {
  await fc.assert(
    fc.asyncProperty(
      BATCH_SIZES,
      CUT_POINTS,
      async (batchSizes, cuts) => {
        const { writer, reader } = syncPair();
        const batches = batchSizes.map((sizes) => sizes.map((s, i) => frame(0x80 + i, s)));
        const stream = concat(batches.map((batch) => sealSync(writer, batch)));
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        const got: (Uint8Array | RecordError)[] = [];
        let start = 0;
        for (const point of [...points, stream.length]) {
          // Pushes a copy that is then scribbled over: the reader must have copied it.
          const chunk = stream.slice(start, point);
          reader.push(chunk);
          chunk.fill(0xee);
          got.push(...await drain(reader));
          start = point;
        }
        assert.deepEqual(got, batches.map(concat));
        assert.equal(reader.bufferedBytes, 0);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("records read in place arrive intact in any chunking, the lent chunk reused after", async () => {
  await fc.assert(
    fc.asyncProperty(
      BATCH_SIZES,
      CUT_POINTS,
      fc.boolean(),
      fc.boolean(),
      async (batchSizes, cuts, asynchronous, mixCopies) => {
        const cipher = asynchronous
          ? await WebCryptoRecordCipher.create(KEY)
          : new NodeRecordCipher(KEY);
        const writer = new SealedRecordWriter(cipher);
        const reader = new SealedRecordReader(cipher);
        const batches = batchSizes.map((sizes) => sizes.map((s, i) => frame(0x80 + i, s)));
        const records = await Promise.all(batches.map((batch) => writer.seal(batch)));
        const stream = concat(records);
        const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
        // One buffer for every chunk, as a socket's read buffer: scribbled over once the reader
        // has said "need more", so anything it did not copy by then is lost.
        const readBuffer = new Uint8Array(stream.length);
        const got: (Uint8Array | RecordError)[] = [];
        let start = 0;
        for (const [i, point] of [...points, stream.length].entries()) {
          const chunk = readBuffer.subarray(0, point - start);
          chunk.set(stream.subarray(start, point));
          if (mixCopies && i % 2 === 1) reader.push(chunk);
          else reader.pushView(chunk);
          for (const plaintext of await drain(reader)) {
            got.push(plaintext instanceof Uint8Array ? plaintext.slice() : plaintext);
          }
          readBuffer.fill(0xee);
          start = point;
        }
        assert.deepEqual(got, batches.map(concat));
        assert.equal(reader.bufferedBytes, 0);
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("a lent chunk's bad record fails the reader for good, as a pushed one does", () => {
  const { writer, reader } = syncPair();
  const record = sealSync(writer, frame(0x80, 20));
  record[10] ^= 1;
  reader.pushView(record);
  const failed = reader.next();
  assert.ok(failed instanceof RecordError);
  assert.equal(failed.code, "record_auth_failed");
  reader.pushView(sealSync(writer, frame(0x81, 2)));
  assert.equal(reader.next(), failed);
  const oversize = new Uint8Array([0xff, 0xff, 0xff, 0xff]);
  const fresh = new SealedRecordReader(new NodeRecordCipher(KEY));
  fresh.pushView(oversize);
  assert.equal((fresh.next() as RecordError).code, "record_too_large");
});

Deno.test("a batch above the record bound is split into several records between frames", async () => {
  const { writer, reader } = syncPair({ maxRecordBytes: 16 + 100 });
  assert.equal(writer.maxPlaintextBytes, 100);
  const frames = Array.from({ length: 10 }, (_, i) => frame(i, 25)); // 30 bytes each
  // Once as a list of frames, once as one concatenated array.
  for (const batch of [frames, concat(frames)]) {
    const before = writer.counter;
    const records = sealSync(writer, batch);
    assert.equal(writer.counter - before, 4); // 3 + 3 + 3 + 1 frames
    reader.push(records);
    const plaintexts = await drain(reader);
    assert.equal(plaintexts.length, 4);
    for (const p of plaintexts) {
      assert.ok(p instanceof Uint8Array && p.length <= 100 && p.length % 30 === 0);
    }
    assert.deepEqual(concat(plaintexts as Uint8Array[]), concat(frames));
  }
});

Deno.test("the writer refuses a frame larger than a record and a batch it cannot split", () => {
  const { writer } = syncPair({ maxRecordBytes: 16 + 100 });
  assert.throws(() => writer.seal(frame(1, 200)), RangeError);
  assert.throws(() => writer.seal([frame(1, 10), frame(2, 96)]), RangeError);
  // Frames cut short, or trailing garbage, where a split is needed.
  const frames = concat([frame(1, 60), frame(2, 60)]);
  assert.throws(() => writer.seal(frames.subarray(0, frames.length - 1)), RangeError);
  assert.throws(() => writer.seal(concat([frames, new Uint8Array([0, 0])])), RangeError);
  assert.equal(writer.counter, 0, "a refused batch uses no counter");
  assert.deepEqual(writer.seal([]), new Uint8Array(0));
  assert.deepEqual(writer.seal(new Uint8Array(0)), new Uint8Array(0));
  assert.equal(writer.counter, 0, "an empty batch uses no counter");
});

Deno.test("the writer never modifies the frames it seals", () => {
  const { writer } = syncPair({ maxRecordBytes: 16 + 100 });
  const frames = [frame(1, 20), frame(2, 70), frame(3, 5)];
  const copies = frames.map((f) => f.slice());
  sealSync(writer, frames);
  sealSync(writer, frames[0]);
  assert.deepEqual(frames, copies);
});

Deno.test("asynchronous ciphers write the same records and read them back", async () => {
  const ciphers: RecordCipher[] = [
    await WebCryptoRecordCipher.create(KEY),
    await HybridRecordCipher.create(KEY, 64),
  ];
  for (const cipher of ciphers) {
    const writer = new SealedRecordWriter(cipher, { maxRecordBytes: 16 + 200 });
    const reference = new SealedRecordWriter(new NodeRecordCipher(KEY), {
      maxRecordBytes: 16 + 200,
    });
    const batches = [[frame(1, 10)], [frame(2, 150), frame(3, 150)], [frame(4, 30)]];
    const records: Uint8Array[] = [];
    for (const batch of batches) {
      const sealed = await writer.seal(batch);
      assert.deepEqual(sealed, sealSync(reference, batch));
      records.push(sealed);
    }
    const reader = new SealedRecordReader(cipher, { maxRecordBytes: 16 + 200 });
    reader.push(concat(records));
    assert.deepEqual(await drain(reader), [
      concat(batches[0]),
      batches[1][0],
      batches[1][1],
      concat(batches[2]),
    ]);
    // Node-sealed records open with the asynchronous cipher too.
    const node = new SealedRecordWriter(new NodeRecordCipher(KEY));
    const nodeReader = new SealedRecordReader(cipher);
    nodeReader.push(sealSync(node, frame(7, 500)));
    assert.deepEqual(await drain(nodeReader), [frame(7, 500)]);
  }
});

Deno.test("an asynchronous reader also fails for good on a tampered record", async () => {
  const cipher = await WebCryptoRecordCipher.create(KEY);
  const writer = new SealedRecordWriter(cipher);
  const first = await writer.seal(frame(1, 10));
  const second = await writer.seal(frame(2, 10));
  const reader = new SealedRecordReader(cipher);
  const tampered = first.slice();
  tampered[10] ^= 0x40;
  reader.push(tampered);
  const pending = reader.next();
  assert.ok(pending instanceof Promise);
  const result = await pending;
  assert.ok(result instanceof RecordError);
  assert.equal(result.code, "record_auth_failed");
  reader.push(second);
  assert.equal(reader.next(), result);
});

Deno.test("a bad maxRecordBytes is refused", () => {
  const cipher = new NodeRecordCipher(KEY);
  for (const bad of [0, 16, 1.5, -1, 2 ** 32, Number.NaN]) {
    assert.throws(() => new SealedRecordWriter(cipher, { maxRecordBytes: bad }), RangeError);
    assert.throws(() => new SealedRecordReader(cipher, { maxRecordBytes: bad }), RangeError);
  }
});

Deno.test("a reader lets go of a large buffer once it is drained", () => {
  const { writer, reader } = syncPair();
  const big = sealSync(writer, frame(1, 60_000));
  reader.push(big.subarray(0, big.length - 1));
  assert.equal(reader.next(), undefined);
  assert.equal(reader.bufferedBytes, big.length - 1);
  reader.push(big.subarray(big.length - 1));
  assert.ok(reader.next() instanceof Uint8Array);
  assert.equal(reader.bufferedBytes, 0);
});

/**
 * node:crypto behind `sealInto` only (its `seal` fails the test), checking on every call the
 * contract the writer must keep: room for the tag, and plaintext either outside `out` or at
 * its very start (in place).
 */
class SealIntoOnly implements RecordCipher {
  readonly sync = true as const;
  readonly #inner = new NodeRecordCipher(KEY);
  calls = 0;
  inPlace = 0;

  seal(): Uint8Array {
    throw new Error("seal must not be used when sealInto is offered");
  }

  open(counter: RecordCounter, sealed: Uint8Array): Uint8Array {
    return this.#inner.open(counter, sealed);
  }

  sealInto(counter: RecordCounter, plaintext: Uint8Array, out: Uint8Array): number {
    this.calls++;
    assert.ok(out.length >= plaintext.length + 16, "out has room for the tag");
    if (plaintext.buffer === out.buffer) {
      assert.equal(plaintext.byteOffset, out.byteOffset, "in place only at the same offset");
      this.inPlace++;
    }
    const sealed = this.#inner.seal(counter, plaintext);
    out.set(sealed);
    return sealed.length;
  }
}

/** Hides every optional method of `cipher`, as a cipher without `sealInto` would be. */
function sealOnly(cipher: RecordCipher): RecordCipher {
  return {
    sync: cipher.sync,
    seal: (counter, plaintext) => cipher.seal(counter, plaintext),
    open: (counter, sealed) => cipher.open(counter, sealed),
  };
}

/** Batches of every shape the writer handles, with the record bound each needs. */
const SHAPES: readonly { name: string; maxRecordBytes?: number; batch: () => Uint8Array[] }[] = [
  { name: "one chunk", batch: () => [concat([frame(1, 35), frame(2, 35)])] },
  { name: "a list of frames", batch: () => Array.from({ length: 20 }, (_, i) => frame(i, 35)) },
  { name: "empty chunks among frames", batch: () => [new Uint8Array(0), frame(3, 1), frame(4, 0)] },
  {
    name: "a list split into several records",
    maxRecordBytes: 16 + 100,
    batch: () => Array.from({ length: 10 }, (_, i) => frame(i, 25)),
  },
  {
    name: "one chunk split into several records",
    maxRecordBytes: 16 + 100,
    batch: () => [concat(Array.from({ length: 10 }, (_, i) => frame(i, 25)))],
  },
  {
    name: "a frame above 1 MiB in a record of its own",
    maxRecordBytes: 3 * 1024 * 1024,
    batch: () => [concat([frame(1, 10), frame(2, 2 * 1024 * 1024), frame(3, 10)]), frame(4, 7)],
  },
];

Deno.test("a cipher with sealInto writes the same records as one without", async () => {
  for (const shape of SHAPES) {
    const options = { maxRecordBytes: shape.maxRecordBytes };
    const into = new SealIntoOnly();
    const writer = new SealedRecordWriter(into, options);
    const reference = new SealedRecordWriter(new NodeRecordCipher(KEY), options);
    const reader = new SealedRecordReader(into, options);
    for (let round = 0; round < 2; round++) {
      const batch = shape.batch();
      const copies = batch.map((b) => b.slice());
      const sealed = sealSync(writer, batch);
      assert.deepEqual(sealed, sealSync(reference, batch), shape.name);
      assert.deepEqual(batch, copies, `${shape.name}: the frames are untouched`);
      assert.equal(writer.counter, reference.counter, shape.name);
      reader.push(sealed);
      const opened = await drain(reader);
      assert.deepEqual(concat(opened as Uint8Array[]), concat(batch), shape.name);
    }
    assert.equal(into.calls, writer.counter, `${shape.name}: one sealInto per record`);
  }
});

Deno.test("several frames of one record are sealed in place, a lone view straight from it", () => {
  const into = new SealIntoOnly();
  const writer = new SealedRecordWriter(into);
  sealSync(writer, [frame(1, 3), frame(2, 3)]);
  assert.deepEqual([into.calls, into.inPlace], [1, 1]);
  sealSync(writer, concat([frame(1, 3), frame(2, 3)]));
  sealSync(writer, [frame(1, 3)]);
  assert.deepEqual([into.calls, into.inPlace], [3, 1]);
});

Deno.test("random batches seal to the same bytes with and without sealInto", () => {
  const frameArb = fc.tuple(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 120 }))
    .map(([type, size]) => frame(type, size));
  fc.assert(
    fc.property(
      fc.array(fc.array(frameArb, { maxLength: 6 }), { maxLength: 6 }),
      fc.integer({ min: 125, max: 700 }),
      (chunkFrames, maxPlaintext) => {
        const options = { maxRecordBytes: 16 + maxPlaintext };
        const writer = new SealedRecordWriter(new SealIntoOnly(), options);
        const reference = new SealedRecordWriter(new NodeRecordCipher(KEY), options);
        const batch = chunkFrames.map(concat);
        assert.deepEqual(sealSync(writer, batch), sealSync(reference, batch));
        assert.equal(writer.counter, reference.counter);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("a refused batch uses no counter and no sealInto", () => {
  const into = new SealIntoOnly();
  const writer = new SealedRecordWriter(into, { maxRecordBytes: 16 + 100 });
  assert.throws(() => writer.seal(frame(1, 200)), RangeError);
  const frames = concat([frame(1, 60), frame(2, 60)]);
  assert.throws(() => writer.seal(frames.subarray(0, frames.length - 1)), RangeError);
  assert.deepEqual(writer.seal([new Uint8Array(0)]), new Uint8Array(0));
  assert.equal(writer.counter, 0);
  assert.equal(into.calls, 0);
});

Deno.test("an asynchronous cipher that offers sealInto is still sealed through seal", async () => {
  const web = await WebCryptoRecordCipher.create(KEY);
  const cipher: RecordCipher = {
    sync: false,
    seal: (counter, plaintext) => web.seal(counter, plaintext),
    open: (counter, sealed) => web.open(counter, sealed),
    sealInto: () => {
      throw new Error("sealInto must not be used by an asynchronous cipher");
    },
  };
  const frames = [frame(1, 10), frame(2, 20)];
  const sealed = await new SealedRecordWriter(cipher).seal(frames);
  assert.deepEqual(sealed, sealSync(new SealedRecordWriter(new NodeRecordCipher(KEY)), frames));
});

Deno.test({
  name: "libcrypto's sealInto writes the same records as its seal, and they open",
  ignore: !FfiRecordCipher.available(),
  fn: async () => {
    for (const shape of SHAPES) {
      const options = { maxRecordBytes: shape.maxRecordBytes };
      using ffi = FfiRecordCipher.create(KEY);
      const writer = new SealedRecordWriter(ffi, options);
      const hidden = new SealedRecordWriter(sealOnly(ffi), options);
      const reference = new SealedRecordWriter(new NodeRecordCipher(KEY), options);
      const reader = new SealedRecordReader(ffi, options);
      for (let round = 0; round < 3; round++) {
        const batch = shape.batch();
        const copies = batch.map((b) => b.slice());
        const sealed = sealSync(writer, batch);
        assert.deepEqual(sealed, sealSync(hidden, batch), shape.name);
        assert.deepEqual(sealed, sealSync(reference, batch), shape.name);
        assert.deepEqual(batch, copies, `${shape.name}: the frames are untouched`);
        reader.push(sealed);
        const opened = await drain(reader);
        assert.deepEqual(concat(opened as Uint8Array[]), concat(batch), shape.name);
      }
    }
  },
});

Deno.test({
  name: "a closed libcrypto cipher makes seal throw instead of writing a record",
  ignore: !FfiRecordCipher.available(),
  fn: () => {
    const ffi = FfiRecordCipher.create(KEY);
    const writer = new SealedRecordWriter(ffi);
    ffi.close();
    assert.throws(() => writer.seal([frame(1, 3), frame(2, 3)]), { code: "ffi_cipher_closed" });
  },
});

Deno.test("records break at the same frames however a large batch is cut into pieces", () => {
  // Over 1 MiB of small frames: two records whatever the pieces (single frames or long runs).
  const frames = Array.from({ length: 40_000 }, (_, i) => frame(0x80 + (i % 64), 32));
  const runs: Uint8Array[] = [];
  for (let i = 0; i < frames.length; i += 1700) runs.push(concat(frames.slice(i, i + 1700)));
  const oneByOne = sealSync(new SealedRecordWriter(new NodeRecordCipher(KEY)), frames);
  const byRuns = sealSync(new SealedRecordWriter(new NodeRecordCipher(KEY)), runs);
  assert.deepEqual(byRuns, oneByOne);
  const reader = new SealedRecordReader(new NodeRecordCipher(KEY));
  reader.push(byRuns);
  const first = reader.next();
  const second = reader.next();
  assert.ok(first instanceof Uint8Array && second instanceof Uint8Array);
  assert.ok(first.length <= DEFAULT_MAX_RECORD_BYTES - 16);
  assert.deepEqual(concat([first, second]), concat(frames));
  assert.equal(reader.next(), undefined);
});

Deno.test("an in-place reader opens the same plaintexts in any chunking, and fails on a bad tag", () => {
  if (!FfiRecordCipher.available()) return; // openInto is libcrypto's; covered where it loads
  using sealer = FfiRecordCipher.create(KEY);
  using opener = FfiRecordCipher.create(KEY);
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: 300 }), { minLength: 1, maxLength: 12 }),
      fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 8 }),
      (sizes, cuts) => {
        const writer = new SealedRecordWriter(sealer);
        const batches = sizes.map((size, i) => frame(0x80 + (i % 16), size));
        const stream = concat(batches.map((b) => writer.seal([b]) as Uint8Array));
        const reader = new SealedRecordReader(opener, { inPlace: true });
        const got: number[][] = [];
        let at = 0;
        for (let i = 0; at < stream.length; i++) {
          const end = Math.min(stream.length, at + cuts[i % cuts.length]);
          reader.push(stream.subarray(at, end));
          at = end;
          for (let r = reader.next(); r !== undefined; r = reader.next()) {
            assert.ok(r instanceof Uint8Array);
            got.push([...r]); // copied at once: the view is only valid until the next call
          }
        }
        assert.deepEqual(got, batches.map((b) => [...b]));
      },
    ),
    { numRuns: 60 },
  );
  const record = new SealedRecordWriter(sealer).seal([frame(0x81, 20)]) as Uint8Array;
  record[record.length - 1] ^= 1;
  const reader = new SealedRecordReader(opener, { inPlace: true });
  reader.push(record);
  const failed = reader.next();
  assert.ok(failed instanceof RecordError);
  assert.equal(failed.code, "record_auth_failed");
  assert.equal(reader.next(), failed);
});

Deno.test("inPlace falls back to new arrays for a cipher without openInto", () => {
  const cipher = new NodeRecordCipher(KEY);
  const record = new SealedRecordWriter(cipher).seal([frame(0x82, 8)]) as Uint8Array;
  const reader = new SealedRecordReader(cipher, { inPlace: true });
  reader.push(record);
  const plaintext = reader.next();
  assert.ok(plaintext instanceof Uint8Array);
  reader.push(new Uint8Array(64)); // would overwrite an in-place view
  assert.deepEqual([...plaintext], [...frame(0x82, 8)]);
});

Deno.test("a writer reusing its output gives the same records as one that allocates", () => {
  if (!FfiRecordCipher.available()) return; // sealInto is libcrypto's; covered where it loads
  using a = FfiRecordCipher.create(KEY);
  using b = FfiRecordCipher.create(KEY);
  const reusing = new SealedRecordWriter(a, { reuseOutput: true });
  const fresh = new SealedRecordWriter(b);
  // The second batch fits the buffer the first one made; the third grows it; the last is larger
  // than a writer keeps.
  const batches = [
    [frame(0x80, 40)],
    [frame(0x81, 3), frame(0x82, 90)],
    [frame(0x84, 900)],
    [frame(0x83, 70_000)],
  ];
  const first = reusing.seal(batches[0]) as Uint8Array;
  const kept = first.slice();
  assert.deepEqual(kept, fresh.seal(batches[0]));
  for (const batch of batches.slice(1)) assert.deepEqual(reusing.seal(batch), fresh.seal(batch));
  // The second batch was sealed into the same buffer: the first view no longer holds its bytes.
  assert.notDeepEqual(first, kept);
});

Deno.test("reading into space() and commit() gives what push() gives, in any chunking", () => {
  const cipher = new NodeRecordCipher(KEY);
  const writer = new SealedRecordWriter(cipher);
  const batches = [frame(0x80, 10), frame(0x81, 5000), frame(0x82, 0), frame(0x83, 70)];
  const stream = concat(batches.map((b) => writer.seal([b]) as Uint8Array));
  for (const cut of [1, 7, 100, 4096, stream.length]) {
    const reader = new SealedRecordReader(cipher);
    const got: number[][] = [];
    for (let at = 0; at < stream.length; at += cut) {
      const piece = stream.subarray(at, Math.min(stream.length, at + cut));
      const space = reader.space(cut);
      assert.ok(space.length >= cut);
      space.set(piece);
      reader.commit(piece.length);
      for (let r = reader.next(); r !== undefined; r = reader.next()) {
        assert.ok(r instanceof Uint8Array);
        got.push([...r]);
      }
    }
    assert.deepEqual(got, batches.map((b) => [...b]), `cut ${cut}`);
  }
  const reader = new SealedRecordReader(cipher);
  const space = reader.space(16);
  assert.throws(() => reader.commit(space.length + 1), RangeError);
  assert.throws(() => reader.commit(-1), RangeError);
});

Deno.test("a browser's WebCrypto record stream is byte-identical to the server cipher's, both ways", async () => {
  // The browser entry (browser.ts) can only use WebCryptoRecordCipher; servers use whatever
  // createRecordCipher picks (libcrypto through FFI here, the hybrid one without --allow-ffi).
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ minLength: 32, maxLength: 32 }),
      fc.array(
        fc.array(fc.tuple(fc.integer({ min: 0x10, max: 0xff }), fc.nat({ max: 2000 })), {
          minLength: 1,
          maxLength: 4,
        }),
        { minLength: 1, maxLength: 5 },
      ),
      async (key, shapes) => {
        const server = await createRecordCipher(key);
        const browser = await WebCryptoRecordCipher.create(key);
        const serverWriter = new SealedRecordWriter(server, { maxRecordBytes: 16 + 3000 });
        const browserWriter = new SealedRecordWriter(browser, { maxRecordBytes: 16 + 3000 });
        const serverRecords: Uint8Array[] = [];
        const browserRecords: Uint8Array[] = [];
        for (const shape of shapes) {
          const batch = shape.map(([type, size]) => frame(type, size));
          serverRecords.push(await serverWriter.seal(batch));
          browserRecords.push(await browserWriter.seal(batch));
        }
        assert.deepEqual(browserRecords, serverRecords);
        // A batch above the record bound is split between frames: compare the frame streams.
        const expected = concat(shapes.flat().map(([type, size]) => frame(type, size)));
        const serverReader = new SealedRecordReader(server, { maxRecordBytes: 16 + 3000 });
        serverReader.push(concat(browserRecords));
        assert.deepEqual(concat(await drain(serverReader) as Uint8Array[]), expected);
        const browserReader = new SealedRecordReader(browser, { maxRecordBytes: 16 + 3000 });
        browserReader.push(concat(serverRecords));
        assert.deepEqual(concat(await drain(browserReader) as Uint8Array[]), expected);
        if (server instanceof FfiRecordCipher) server.close();
      },
    ),
    { numRuns: 40 },
  );
});
