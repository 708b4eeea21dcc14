import assert from "node:assert/strict";
import { PlayerTable } from "../cluster/players.ts";

Deno.test("each player gets a fresh non-zero client id", () => {
  const table = new PlayerTable<string>();
  const ids = ["a", "b", "c"].map((name) => table.add(name, name)!.clientId);
  assert.deepEqual(ids, [1, 2, 3]);
  assert.equal(table.size, 3);
  assert.equal(table.get(2)?.playerId, "b");
  assert.equal(table.player(3)?.connection, "c");
});

Deno.test("a freed id is not reused before the counter wraps", () => {
  const table = new PlayerTable<string>();
  const a = table.add("a", "A")!;
  table.remove(a.clientId);
  assert.equal(table.add("b", "B")!.clientId, 2);
});

Deno.test("ids wrap round the u32 range and skip 0", () => {
  const table = new PlayerTable<string>({ firstId: 0xffff_fffe });
  assert.equal(table.add("a", "A")!.clientId, 0xffff_fffe);
  assert.equal(table.add("b", "B")!.clientId, 0xffff_ffff);
  assert.equal(table.add("c", "C")!.clientId, 1);
  assert.equal(table.add("d", "D")!.clientId, 2);
});

Deno.test("the table refuses players beyond its bound and accepts again after a leave", () => {
  const table = new PlayerTable<string>({ maxPlayers: 2 });
  const a = table.add("a", "A")!;
  table.add("b", "B");
  assert.equal(table.full, true);
  assert.equal(table.add("c", "C"), undefined);
  table.remove(a.clientId);
  assert.equal(table.full, false);
  assert.ok(table.add("c", "C") !== undefined);
});

Deno.test("connections follow adds and removes, for broadcasting", () => {
  const table = new PlayerTable<string>();
  const a = table.add("a", "A")!;
  table.add("b", "B");
  assert.deepEqual([...table.connections], ["A", "B"]);
  table.remove(a.clientId);
  assert.deepEqual([...table.connections], ["B"]);
  assert.equal(table.remove(a.clientId), undefined);
});

Deno.test("the player list is cached until the table changes and is frozen", () => {
  const table = new PlayerTable<string>();
  table.add("a", "A");
  const first = table.list();
  assert.equal(table.list(), first);
  assert.ok(Object.isFrozen(first));
  assert.ok(Object.isFrozen(first[0]));
  table.add("b", "B");
  assert.notEqual(table.list(), first);
  assert.deepEqual(table.list().map((p) => p.playerId), ["a", "b"]);
  assert.deepEqual([...table.players()].map((p) => p.clientId), [1, 2]);
});

Deno.test("bad table options are refused with a RangeError naming the option", () => {
  assert.throws(() => new PlayerTable({ maxPlayers: -1 }), /maxPlayers/);
  assert.throws(() => new PlayerTable({ maxPlayers: 1.5 }), /maxPlayers/);
  assert.throws(() => new PlayerTable({ firstId: 0 }), /firstId/);
  assert.throws(() => new PlayerTable({ firstId: 2 ** 32 }), /firstId/);
});
