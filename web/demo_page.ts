// This module is browser compatible.
/// <reference lib="dom" />
/**
 * The live demo page's script (bundled with the library into `demo.js` by the demo): joins
 * through the master over WebSocket, draws the players of its fragment on a canvas, chats,
 * moves the player with the arrow keys / WASD, and shows the connection state and the latency
 * (an echo round trip). Its state is also on `globalThis.sustenetDemo` for tests and curious
 * people with a console.
 *
 * It must never throw out of an event handler and never trust a peer's text as HTML.
 *
 * @module
 */

import { SustenetClient } from "../client/sustenet_client.ts";
import type { ClusterSession } from "../client/cluster_session_handle.ts";
import { webSocketConnector } from "../client/websocket_connector.ts";
import { CHAT_COMMAND, CHAT_REFUSED_COMMAND } from "../plugins/chat.ts";
import { ECHO_COMMAND } from "../plugins/echo.ts";

/** What the demo server tells the page (`config.json`). */
export interface DemoPageConfig {
  /** The master's WebSocket URL. */
  readonly masterUrl: string;
  /** Side of a fragment, in world units (the grid drawn). */
  readonly fragmentSize: number;
}

/** A player the page sees. */
export interface SeenPlayer {
  x: number;
  y: number;
  playerId: string;
}

/** The page's state, on `globalThis.sustenetDemo`. */
export interface DemoPageState {
  /** Connection state, as shown. */
  state: "connecting" | "joined" | "reconnecting" | "closed" | "failed";
  /** The cluster joined. */
  cluster: string;
  /** This player's client id on the cluster. */
  clientId: number;
  /** This player's position. */
  me: { x: number; y: number };
  /** Other players in view, by client id. */
  players: Record<string, SeenPlayer>;
  /** Move entries received so far. */
  movesReceived: number;
  /** Chat lines received (`name: text`). */
  chat: string[];
  /** Last echo round trip, in ms. */
  rttMs: number | undefined;
  /** Successful rejoins after the cluster dropped. */
  reconnects: number;
  /** The last failure, if any. */
  error: string | undefined;
  /** Sends a chat line; `false` if not joined. */
  say(text: string): boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Player speed, in world units per second. */
const SPEED = 24;
/** Time between two moves sent while walking, in ms (and the longest gap when standing). */
const MOVE_INTERVAL_MS = 100;

function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element as T;
}

const ui = {
  canvas: byId<HTMLCanvasElement>("world"),
  state: byId("state"),
  cluster: byId("cluster"),
  me: byId("me"),
  players: byId("players"),
  latency: byId("latency"),
  chatLog: byId<HTMLUListElement>("chat-log"),
  chatForm: byId<HTMLFormElement>("chat-form"),
  chatInput: byId<HTMLInputElement>("chat-input"),
};

let session: ClusterSession | undefined;

const demo: DemoPageState = {
  state: "connecting",
  cluster: "",
  clientId: 0,
  me: { x: 20 + Math.random() * 24, y: 20 + Math.random() * 24 },
  players: {},
  movesReceived: 0,
  chat: [],
  rttMs: undefined,
  reconnects: 0,
  error: undefined,
  say(text: string): boolean {
    if (session === undefined || session.status !== "joined" || text.trim() === "") return false;
    return session.send(CHAT_COMMAND, encoder.encode(text));
  },
};
(globalThis as unknown as { sustenetDemo: DemoPageState }).sustenetDemo = demo;

function setState(state: DemoPageState["state"], detail = ""): void {
  demo.state = state;
  ui.state.dataset.state = state;
  ui.state.textContent = detail === "" ? state : `${state} (${detail})`;
}

function addChat(line: string): void {
  demo.chat.push(line);
  const item = document.createElement("li");
  item.textContent = line; // text, never HTML
  ui.chatLog.append(item);
  while (ui.chatLog.childElementCount > 200) ui.chatLog.firstElementChild?.remove();
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function nameOf(clientId: number): string {
  if (clientId === demo.clientId) return "you";
  return demo.players[clientId]?.playerId ?? `player ${clientId}`;
}

// ------------------------------------------------------------------ movement

const held = new Set<string>();
const KEYS: Record<string, [number, number]> = {
  ArrowUp: [0, -1],
  ArrowDown: [0, 1],
  ArrowLeft: [-1, 0],
  ArrowRight: [1, 0],
  w: [0, -1],
  s: [0, 1],
  a: [-1, 0],
  d: [1, 0],
};
addEventListener("keydown", (event) => {
  if (event.target === ui.chatInput) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key;
  if (KEYS[key] === undefined) return;
  held.add(key);
  event.preventDefault();
});
addEventListener("keyup", (event) => {
  held.delete(event.key.length === 1 ? event.key.toLowerCase() : event.key);
});
addEventListener("blur", () => held.clear());

let lastStep = performance.now();
let lastMoveSent = 0;
setInterval(() => {
  const now = performance.now();
  const seconds = Math.min(0.25, (now - lastStep) / 1000);
  lastStep = now;
  let dx = 0, dy = 0;
  for (const key of held) {
    dx += KEYS[key][0];
    dy += KEYS[key][1];
  }
  const walking = dx !== 0 || dy !== 0;
  if (walking) {
    const length = Math.hypot(dx, dy);
    demo.me.x += (dx / length) * SPEED * seconds;
    demo.me.y += (dy / length) * SPEED * seconds;
  }
  if (session?.status === "joined" && (walking || now - lastMoveSent > 1000)) {
    session.move({ x: demo.me.x, y: demo.me.y, z: 0 });
    lastMoveSent = now;
  }
}, MOVE_INTERVAL_MS);

// ------------------------------------------------------------------ latency

let echoSequence = 0;
const echoSentAt = new Map<number, number>();
setInterval(() => {
  if (session?.status !== "joined") return;
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, echoSequence);
  echoSentAt.set(echoSequence, performance.now());
  session.send(ECHO_COMMAND, payload);
  echoSequence++;
  if (echoSentAt.size > 30) echoSentAt.delete(echoSentAt.keys().next().value!);
}, 1000);

// ------------------------------------------------------------------ drawing

function draw(): void {
  const context = ui.canvas.getContext("2d");
  if (context === null) return;
  const { width, height } = ui.canvas;
  const scale = 5; // pixels per world unit
  const originX = demo.me.x - width / 2 / scale;
  const originY = demo.me.y - height / 2 / scale;
  const toScreen = (x: number, y: number): [number, number] => [
    (x - originX) * scale,
    (y - originY) * scale,
  ];
  context.clearRect(0, 0, width, height);
  // Fragment borders.
  context.strokeStyle = "#24506e";
  context.lineWidth = 1;
  const size = config?.fragmentSize ?? 64;
  for (let gx = Math.floor(originX / size) * size; gx < originX + width / scale; gx += size) {
    const [sx] = toScreen(gx, 0);
    context.beginPath();
    context.moveTo(sx, 0);
    context.lineTo(sx, height);
    context.stroke();
  }
  for (let gy = Math.floor(originY / size) * size; gy < originY + height / scale; gy += size) {
    const [, sy] = toScreen(0, gy);
    context.beginPath();
    context.moveTo(0, sy);
    context.lineTo(width, sy);
    context.stroke();
  }
  context.font = "11px system-ui, sans-serif";
  for (const [id, player] of Object.entries(demo.players)) {
    const [sx, sy] = toScreen(player.x, player.y);
    context.fillStyle = "#4fa3ff";
    context.beginPath();
    context.arc(sx, sy, 6, 0, 2 * Math.PI);
    context.fill();
    context.fillStyle = "#b9c7d3";
    context.fillText(player.playerId || `player ${id}`, sx + 8, sy - 6);
  }
  const [mx, my] = toScreen(demo.me.x, demo.me.y);
  context.fillStyle = "#ffb347";
  context.beginPath();
  context.arc(mx, my, 8, 0, 2 * Math.PI);
  context.fill();
  context.fillStyle = "#ffe0b0";
  context.fillText("you", mx + 10, my - 8);

  const count = Object.keys(demo.players).length;
  ui.players.textContent = String(count);
  ui.canvas.dataset.players = String(count);
  ui.me.textContent = demo.clientId === 0
    ? "–"
    : `client ${demo.clientId} at (${demo.me.x.toFixed(1)}, ${demo.me.y.toFixed(1)})`;
  ui.latency.textContent = demo.rttMs === undefined ? "–" : `${demo.rttMs.toFixed(1)} ms`;
  requestAnimationFrame(draw);
}

// ------------------------------------------------------------------ connection

function watch(joined: ClusterSession): void {
  session = joined;
  demo.cluster = joined.serverName;
  demo.clientId = joined.clientId;
  ui.cluster.textContent = `${joined.serverName} (${joined.address})`;
  setState("joined");
  joined.on("spawn", ({ clientId, playerId, state }) => {
    demo.players[clientId] = { x: state.x, y: state.y, playerId };
  });
  joined.on("despawn", ({ clientId }) => {
    delete demo.players[clientId];
  });
  joined.on("moves", ({ entries }) => {
    for (const { clientId, state } of entries) {
      demo.movesReceived++;
      const player = demo.players[clientId];
      if (player === undefined) demo.players[clientId] = { x: state.x, y: state.y, playerId: "" };
      else {
        player.x = state.x;
        player.y = state.y;
      }
    }
  });
  joined.on("message", ({ command, payload }) => {
    if (command === CHAT_COMMAND && payload.length >= 4) {
      const from = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
      addChat(`${nameOf(from)}: ${decoder.decode(payload.subarray(4))}`);
    } else if (command === CHAT_REFUSED_COMMAND) {
      addChat(`(refused: ${decoder.decode(payload)})`);
    } else if (command === ECHO_COMMAND && payload.length === 8) {
      const sequence = new DataView(payload.buffer, payload.byteOffset).getUint32(0);
      const sentAt = echoSentAt.get(sequence);
      if (sentAt !== undefined) demo.rttMs = performance.now() - sentAt;
      echoSentAt.delete(sequence);
    }
  });
  joined.on("disconnect", ({ reason, reconnecting }) => {
    demo.players = {};
    demo.error = reason;
    setState(reconnecting ? "reconnecting" : "closed", reason);
  });
  joined.on("reconnect", ({ clientId }) => {
    demo.clientId = clientId;
    demo.reconnects++;
    ui.cluster.textContent = `${joined.serverName} (${joined.address})`;
    setState("joined");
  });
}

ui.chatForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (demo.say(ui.chatInput.value)) ui.chatInput.value = "";
});
ui.canvas.addEventListener("click", () => ui.canvas.focus());

let config: DemoPageConfig | undefined;

async function start(): Promise<void> {
  try {
    const response = await fetch("./config.json");
    config = await response.json() as DemoPageConfig;
    requestAnimationFrame(draw);
    const client = await SustenetClient.connect({
      connect: webSocketConnector({ masterUrl: config.masterUrl }),
      keepaliveMs: 2000,
      reconnect: { minMs: 250, maxMs: 2000 },
    });
    watch(await client.join("auto"));
  } catch (error) {
    demo.error = error instanceof Error ? error.message : String(error);
    setState("failed", demo.error);
  }
}

start();
