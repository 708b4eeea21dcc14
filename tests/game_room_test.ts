/**
 * The game core without sockets: a GameRoom with real in-process plugins and a real fragment
 * grid, its output read back from a recording outbox (the adapter the cluster implements over
 * connections) and decoded as a client would.
 */
import assert from "node:assert/strict";
import { GameRoom, type RoomOutbox } from "../cluster/game_room.ts";
import type { FragmentGridOptions } from "../cluster/fragment_grid.ts";
import { InProcessPluginHost } from "../cluster/in_process_plugin_host.ts";
import { ClusterMetrics } from "../cluster/metrics.ts";
import { PlayerTable } from "../cluster/players.ts";
import type { PluginHost } from "../cluster/plugin_host.ts";
import {
  type ClientId,
  definePlugin,
  type PlayerInfo,
  type SustenetPlugin,
} from "../shared/plugin.ts";
import { decodePacket } from "../shared/protocol/codec.ts";
import { FrameDecoder } from "../shared/protocol/frame.ts";
import type { MoveState } from "../shared/protocol/move_state.ts";
import type { Packet } from "../shared/protocol/packets.ts";
import { ErrorCode } from "../shared/protocol/protocol_error.ts";

const FRAGMENTS: FragmentGridOptions = {
  size: 10,
  tickHz: 20,
  maxPlayersPerFragment: 100,
  crowdThreshold: 50,
};

/** One call the room made on its outbox. */
type OutboxCall =
  | { readonly kind: "send"; readonly to: ClientId; readonly packets: readonly Packet[] }
  | {
    readonly kind: "sendFrame";
    readonly to: ClientId;
    readonly type: number;
    readonly payload: readonly number[];
  }
  | {
    readonly kind: "broadcastFrame";
    readonly type: number;
    readonly payload: readonly number[];
    readonly except: ClientId | undefined;
  }
  | {
    readonly kind: "sendToEach";
    readonly to: readonly ClientId[];
    readonly packets: readonly Packet[];
    readonly except: ClientId | undefined;
  }
  | { readonly kind: "kick"; readonly to: ClientId; readonly reason: string };

/** Decodes whole frames the way a client would, failing on any malformed byte. */
function packetsOf(bytes: Uint8Array): Packet[] {
  const decoder = new FrameDecoder({ maxFrameBytes: 1 << 20 });
  decoder.push(bytes);
  const packets: Packet[] = [];
  for (let frame = decoder.next(); frame !== undefined; frame = decoder.next()) {
    assert.ok(!(frame instanceof Error), String(frame));
    const packet = decodePacket(frame);
    assert.ok(!(packet instanceof Error), String(packet));
    packets.push(packet);
  }
  return packets;
}

class RecordingOutbox implements RoomOutbox {
  calls: OutboxCall[] = [];

  send(to: ClientId, frameBytes: Uint8Array): void {
    this.calls.push({ kind: "send", to, packets: packetsOf(frameBytes) });
  }
  sendFrame(to: ClientId, type: number, payload: Uint8Array): void {
    this.calls.push({ kind: "sendFrame", to, type, payload: [...payload] });
  }
  broadcastFrame(type: number, payload: Uint8Array, except?: ClientId): void {
    this.calls.push({ kind: "broadcastFrame", type, payload: [...payload], except });
  }
  sendToEach(clients: Iterable<ClientId>, frameBytes: Uint8Array, except?: ClientId): void {
    this.calls.push({
      kind: "sendToEach",
      to: [...clients].sort((a, b) => a - b),
      packets: packetsOf(frameBytes),
      except,
    });
  }
  kick(to: ClientId, reason: string): void {
    this.calls.push({ kind: "kick", to, reason });
  }

  /** Every packet sent to one player (by `send`), in order; clears the record. */
  packetsTo(client: ClientId): Packet[] {
    const packets = this.calls.flatMap((c) =>
      c.kind === "send" && c.to === client ? c.packets : []
    );
    return packets;
  }

  take(): OutboxCall[] {
    const calls = this.calls;
    this.calls = [];
    return calls;
  }
}

/** A room with the given plugins (in-process, started) and players. */
async function roomWith(
  options: {
    plugins?: readonly SustenetPlugin[];
    hosts?: readonly PluginHost[];
    fragments?: FragmentGridOptions;
    players?: readonly string[];
    maxFrameBytes?: number;
  },
) {
  const players = new PlayerTable<null>();
  const outbox = new RecordingOutbox();
  const metrics = new ClusterMetrics({
    players: () => players.size,
    connections: () => [],
    masterLinkState: () => "disabled",
    fragments: () => undefined,
  });
  const clock = { now: 0 };
  const room = new GameRoom({
    players,
    outbox,
    metrics,
    maxFrameBytes: options.maxFrameBytes ?? 4096,
    clock: () => clock.now,
    ...(options.fragments === undefined ? {} : { fragments: options.fragments }),
  });
  for (const [i, plugin] of (options.plugins ?? []).entries()) {
    room.addPlugin(new InProcessPluginHost(plugin, room, { name: `p${i}` }));
  }
  for (const host of options.hosts ?? []) room.addPlugin(host);
  for (const host of room.plugins) await host.start();
  const ids: ClientId[] = [];
  for (const name of options.players ?? []) {
    const player = players.add(name, null);
    assert.ok(player !== undefined);
    room.join(player.info);
    ids.push(player.clientId);
  }
  return {
    room,
    players,
    outbox,
    metrics,
    clock,
    ids,
    /** Removes a player from the table and the room, as the cluster does on a close. */
    leave(client: ClientId, reason: string): void {
      const player = players.remove(client);
      assert.ok(player !== undefined);
      room.leave(player.info, reason);
    },
    async [Symbol.asyncDispose]() {
      for (const host of room.plugins) await host.stop();
    },
  };
}

function at(x: number, z: number): MoveState {
  return { x, y: 0, z };
}

/** The MoveBatch entries a list of packets holds, as [clientId, x] pairs. */
function batchEntries(packets: readonly Packet[]): [number, number][] {
  return packets.flatMap((p) =>
    p.kind === "MoveBatch" ? p.entries.map((e): [number, number] => [e.clientId, e.state.x]) : []
  );
}

// ---------------------------------------------------------------- moves

Deno.test("a move every plugin accepts is placed; one a plugin refuses is counted and corrected with the stored state", async () => {
  await using t = await roomWith({
    fragments: FRAGMENTS,
    players: ["alice"],
    plugins: [definePlugin({ onMove: (_ctx, _client, move) => move.x < 100 })],
  });
  const [alice] = t.ids;
  t.room.move(alice, at(5, 5), 0);
  assert.equal(t.metrics.movesAccepted.value, 1);
  assert.deepEqual(t.room.fragmentCoordsOf(alice), { fx: 0, fz: 0 });
  assert.deepEqual(t.outbox.take(), []);

  t.room.move(alice, at(500, 5), 10);
  assert.equal(t.metrics.movesRejected.value, 1);
  assert.deepEqual(t.outbox.packetsTo(alice), [
    { kind: "MoveBatch", entries: [{ clientId: alice, state: at(5, 5) }] },
  ]);
  assert.deepEqual(t.room.fragmentCoordsOf(alice), { fx: 0, fz: 0 });
});

Deno.test("a position that is no number is refused before any plugin sees it", async () => {
  const seen: number[] = [];
  await using t = await roomWith({
    players: ["alice"],
    plugins: [definePlugin({ onMove: (_ctx, _client, move) => void seen.push(move.x) })],
  });
  t.room.move(t.ids[0], { x: NaN, y: 0, z: 0 }, 0);
  t.room.move(t.ids[0], { x: 1, y: Infinity, z: 0 }, 0);
  assert.deepEqual(seen, []);
  assert.equal(t.metrics.movesRejected.value, 2);
  // Never placed: there is no stored state to correct with.
  assert.deepEqual(t.outbox.take(), []);
});

Deno.test("without fragments an accepted move is only counted", async () => {
  await using t = await roomWith({ players: ["alice"] });
  t.room.move(t.ids[0], at(1, 2), 0);
  t.room.tick(50, 50);
  assert.equal(t.metrics.movesAccepted.value, 1);
  assert.equal(t.room.hasFragments, false);
  assert.equal(t.room.fragmentStats(), undefined);
  assert.deepEqual(t.outbox.take(), []);
});

/** A plugin host whose move checks settle when the test says (as a Worker host's do). */
class DeferredVerdicts implements PluginHost {
  readonly name = "deferred";
  readonly state = "running" as const;
  readonly waiting: PromiseWithResolvers<boolean>[] = [];
  start(): Promise<void> {
    return Promise.resolve();
  }
  join(_player: PlayerInfo): void {}
  leave(_player: PlayerInfo, _reason: string): void {}
  handles(_command: number): boolean {
    return false;
  }
  message(): void {}
  move(): Promise<boolean> {
    const verdict = Promise.withResolvers<boolean>();
    this.waiting.push(verdict);
    return verdict.promise;
  }
  tick(_dtMs: number): void {}
  flush(): Promise<void> {
    return Promise.resolve();
  }
  stop(): Promise<void> {
    return Promise.resolve();
  }
}

/** Resolves after every promise reaction queued so far has run. */
function settled(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("a move checked asynchronously is placed once accepted, corrected once refused, and dropped if its player left meanwhile", async () => {
  const deferred = new DeferredVerdicts();
  await using t = await roomWith({
    fragments: FRAGMENTS,
    players: ["alice", "bob"],
    hosts: [deferred],
  });
  const [alice, bob] = t.ids;
  t.room.move(alice, at(1, 1), 0);
  assert.equal(t.room.fragmentCoordsOf(alice), undefined); // not yet decided
  deferred.waiting[0].resolve(true);
  await settled();
  assert.deepEqual(t.room.fragmentCoordsOf(alice), { fx: 0, fz: 0 });
  assert.equal(t.metrics.movesAccepted.value, 1);

  t.room.move(alice, at(30, 1), 10);
  deferred.waiting[1].resolve(false);
  await settled();
  assert.equal(t.metrics.movesRejected.value, 1);
  assert.deepEqual(batchEntries(t.outbox.packetsTo(alice)), [[alice, 1]]);

  t.room.move(bob, at(2, 2), 20);
  t.leave(bob, "gone");
  deferred.waiting[2].resolve(true);
  await settled();
  assert.equal(t.room.fragmentCoordsOf(bob), undefined);
  assert.equal(t.metrics.movesAccepted.value, 1);
});

// ---------------------------------------------------------------- the fragment tick

Deno.test("across fragment borders: neighbours are spawned, updated by MoveBatch, despawned when out of view", async () => {
  await using t = await roomWith({ fragments: FRAGMENTS, players: ["alice", "bob", "carol"] });
  const [alice, bob, carol] = t.ids;
  // Alice and Bob in neighbouring fragments (0,0) and (1,0); Carol far away at (5,0).
  t.room.move(alice, at(5, 5), 0);
  t.room.move(bob, at(15, 5), 0);
  t.room.move(carol, at(55, 5), 0);
  t.room.tick(50, 50);
  const spawnsOf = (client: ClientId) =>
    t.outbox.packetsTo(client).flatMap((p) =>
      p.kind === "Spawn" ? [[p.clientId, p.playerId, p.state.x]] : []
    );
  assert.deepEqual(spawnsOf(alice), [[bob, "bob", 15]]);
  assert.deepEqual(spawnsOf(bob), [[alice, "alice", 5]]);
  assert.deepEqual(spawnsOf(carol), []);
  t.outbox.take();

  // Bob walks within his fragment: Alice gets his new position, Carol nothing.
  t.room.move(bob, at(16, 5), 60);
  t.room.tick(100, 50);
  assert.deepEqual(batchEntries(t.outbox.packetsTo(alice)), [[bob, 16]]);
  assert.deepEqual(t.outbox.packetsTo(carol), []);
  assert.deepEqual(batchEntries(t.outbox.packetsTo(bob)), []); // never its own entry
  t.outbox.take();

  // Bob crosses into Carol's neighbourhood (4,0): Alice despawns him, Carol spawns him, and
  // Bob swaps Alice for Carol.
  t.room.move(bob, at(45, 5), 110);
  t.room.tick(150, 50);
  const kinds = (client: ClientId) =>
    t.outbox.packetsTo(client).flatMap((p) =>
      p.kind === "Spawn" || p.kind === "Despawn" ? [`${p.kind} ${p.clientId}`] : []
    );
  assert.deepEqual(kinds(alice), [`Despawn ${bob}`]);
  assert.deepEqual(kinds(bob), [`Despawn ${alice}`, `Spawn ${carol}`]);
  assert.deepEqual(kinds(carol), [`Spawn ${bob}`]);
  t.outbox.take();

  // A player who leaves is despawned for those who saw it.
  t.leave(bob, "quit");
  t.room.tick(200, 50);
  assert.deepEqual(kinds(carol), [`Despawn ${bob}`]);
  assert.deepEqual(kinds(alice), []);
});

Deno.test("a tick runs every plugin's onTick with the time since the previous one", async () => {
  const ticks: number[] = [];
  await using t = await roomWith({
    plugins: [definePlugin({ onTick: (_ctx, dtMs) => void ticks.push(dtMs) })],
  });
  t.room.tick(50, 50);
  t.room.tick(120, 70);
  assert.deepEqual(ticks, [50, 70]);
});

// ---------------------------------------------------------------- plugin commands and actions

Deno.test("a command no plugin handles is answered with Error(Unhandled); a handled one reaches its plugin", async () => {
  const got: [number, number, number[]][] = [];
  await using t = await roomWith({
    players: ["alice"],
    plugins: [
      definePlugin({
        commands: [0x80],
        onMessage: (_ctx, from, command, payload) => void got.push([from, command, [...payload]]),
      }),
    ],
  });
  const [alice] = t.ids;
  t.room.message(alice, 0x80, new Uint8Array([7]));
  t.room.message(alice, 0x9a, new Uint8Array([8]));
  assert.deepEqual(got, [[alice, 0x80, [7]]]);
  assert.equal(t.metrics.pluginMessages.value, 2);
  assert.equal(t.metrics.pluginUnhandled.value, 1);
  assert.deepEqual(t.outbox.take(), [{
    kind: "send",
    to: alice,
    packets: [{
      kind: "Error",
      code: ErrorCode.Unhandled,
      reason: "no plugin handles command 0x9a",
    }],
  }]);
});

/** A plugin that acts on a player's command: 0x80 send back, 0x81 broadcast, 0x82 near, 0x83 kick. */
const ACTOR = definePlugin({
  onMessage(ctx, from, command, payload) {
    if (command === 0x80) ctx.send(from, 0x90, payload);
    if (command === 0x81) ctx.broadcast(0x91, payload, { except: from });
    if (command === 0x82) ctx.broadcast(0x92, payload, { near: from });
    if (command === 0x83) ctx.kick(from, "asked for it");
    if (command === 0x84) ctx.broadcast(0x94, payload, { fragment: 0 });
  },
});

Deno.test("a plugin's send and broadcast reach the outbox addressed by client id", async () => {
  await using t = await roomWith({ players: ["alice", "bob"], plugins: [ACTOR] });
  const [alice] = t.ids;
  t.room.message(alice, 0x80, new Uint8Array([1, 2]));
  t.room.message(alice, 0x81, new Uint8Array([3]));
  assert.deepEqual(t.outbox.take(), [
    { kind: "sendFrame", to: alice, type: 0x90, payload: [1, 2] },
    { kind: "broadcastFrame", type: 0x91, payload: [3], except: alice },
  ]);
});

Deno.test("a broadcast near a player goes to those who see its fragment, or to everyone before it has one", async () => {
  await using t = await roomWith({
    fragments: FRAGMENTS,
    players: ["alice", "bob", "carol"],
    plugins: [ACTOR],
  });
  const [alice, bob, carol] = t.ids;
  // Not placed yet: everyone.
  t.room.message(alice, 0x82, new Uint8Array([9]));
  assert.deepEqual(t.outbox.take(), [
    { kind: "broadcastFrame", type: 0x92, payload: [9], except: undefined },
  ]);
  t.room.move(alice, at(5, 5), 0);
  t.room.move(bob, at(15, 5), 0);
  t.room.move(carol, at(55, 5), 0);
  t.room.tick(50, 50);
  t.outbox.take();
  t.room.message(alice, 0x82, new Uint8Array([9]));
  assert.deepEqual(t.outbox.take(), [{
    kind: "sendToEach",
    to: [alice, bob],
    packets: [{ kind: "Plugin", command: 0x92, payload: new Uint8Array([9]) }],
    except: undefined,
  }]);
});

Deno.test("a broadcast to a fragment is dropped when fragments are off", async () => {
  await using t = await roomWith({ players: ["alice"], plugins: [ACTOR] });
  t.room.message(t.ids[0], 0x84, new Uint8Array([1]));
  assert.deepEqual(t.outbox.take(), []);
});

Deno.test("a plugin's kick is counted and reaches the outbox; a kick of someone gone does nothing", async () => {
  await using t = await roomWith({ players: ["alice"], plugins: [ACTOR] });
  const [alice] = t.ids;
  t.room.message(alice, 0x83, new Uint8Array());
  assert.deepEqual(t.outbox.take(), [{ kind: "kick", to: alice, reason: "asked for it" }]);
  assert.equal(t.metrics.kicks.value, 1);
  t.leave(alice, "kicked");
  t.room.kick(alice, "again");
  assert.deepEqual(t.outbox.take(), []);
  assert.equal(t.metrics.kicks.value, 1);
});

Deno.test("a plugin frame above max_frame_bytes is dropped; a send to a player who left is dropped", async () => {
  await using t = await roomWith({
    players: ["alice", "bob"],
    plugins: [ACTOR],
    maxFrameBytes: 16,
  });
  const [alice, bob] = t.ids;
  t.room.message(alice, 0x80, new Uint8Array(16)); // 17 bytes with its type
  t.room.message(alice, 0x81, new Uint8Array(16));
  t.room.message(alice, 0x80, new Uint8Array(15));
  assert.deepEqual(t.outbox.take().map((c) => c.kind), ["sendFrame"]);
  t.leave(bob, "quit");
  t.room.send(bob, 0x90, new Uint8Array(1));
  assert.deepEqual(t.outbox.take(), []);
  assert.throws(() => t.room.send(alice, 0x10, new Uint8Array(1)), RangeError);
});

Deno.test("stopping the room's plugins stops each in order, even after one whose onStop throws", async () => {
  const stopped: string[] = [];
  await using t = await roomWith({
    plugins: [
      definePlugin({
        onStop() {
          stopped.push("first");
          throw new Error("boom");
        },
      }),
      definePlugin({ onStop: () => void stopped.push("second") }),
    ],
  });
  await t.room.stopPlugins();
  assert.deepEqual(stopped, ["first", "second"]);
  assert.deepEqual(t.room.plugins.map((host) => host.state), ["stopped", "stopped"]);
});
