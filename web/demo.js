// The live demo page's script: joins through the master over WebSocket with the library's
// browser bundle (`sustenet.js`, made by `deno bundle` of browser.ts), draws the players of its
// fragment on a canvas, chats, moves the player with the arrow keys / WASD, and shows the
// connection state and the latency (an echo round trip). Plain JavaScript, so the page needs
// nothing but the bundle; its state is on `globalThis.sustenetDemo` for tests and the console.
// It must never throw out of an event handler and never put a peer's text in as HTML.

// The bundle is served next to this file; its URL is computed so that `deno check` (which sees
// this file in the repository, where no bundle is) does not try to resolve it.
const sustenet = await import(new URL("./sustenet.js", import.meta.url).href);

/** Plugin commands of the demo's clusters: plugins/echo.ts and plugins/chat.ts. */
const ECHO_COMMAND = 0x80;
const CHAT_COMMAND = 0x81;
const CHAT_REFUSED_COMMAND = 0x82;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Player speed, in world units per second. */
const SPEED = 24;
/** Time between two moves sent while walking, in ms (and the longest gap when standing). */
const MOVE_INTERVAL_MS = 100;

function byId(id) {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`the page has no #${id}`);
  return element;
}

const ui = {
  canvas: byId("world"),
  state: byId("state"),
  cluster: byId("cluster"),
  me: byId("me"),
  players: byId("players"),
  latency: byId("latency"),
  chatLog: byId("chat-log"),
  chatForm: byId("chat-form"),
  chatInput: byId("chat-input"),
};

/** The joined cluster session, once joined. */
let session;

/** The page's state, also on `globalThis.sustenetDemo` for tests and the console. */
const demo = {
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
  say(text) {
    if (session === undefined || session.status !== "joined" || text.trim() === "") return false;
    return session.send(CHAT_COMMAND, encoder.encode(text));
  },
};
globalThis.sustenetDemo = demo;

function setState(state, detail = "") {
  demo.state = state;
  ui.state.dataset.state = state;
  ui.state.textContent = detail === "" ? state : `${state} (${detail})`;
}

function addChat(line) {
  demo.chat.push(line);
  const item = document.createElement("li");
  item.textContent = line; // text, never HTML
  ui.chatLog.append(item);
  while (ui.chatLog.childElementCount > 200) ui.chatLog.firstElementChild?.remove();
  ui.chatLog.scrollTop = ui.chatLog.scrollHeight;
}

function nameOf(clientId) {
  if (clientId === demo.clientId) return "you";
  return demo.players[clientId]?.playerId ?? `player ${clientId}`;
}

// ------------------------------------------------------------------ movement

const held = new Set();
const KEYS = {
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
const echoSentAt = new Map();
setInterval(() => {
  if (session?.status !== "joined") return;
  const payload = new Uint8Array(8);
  new DataView(payload.buffer).setUint32(0, echoSequence);
  echoSentAt.set(echoSequence, performance.now());
  session.send(ECHO_COMMAND, payload);
  echoSequence++;
  if (echoSentAt.size > 30) echoSentAt.delete(echoSentAt.keys().next().value);
}, 1000);

// ------------------------------------------------------------------ drawing

function draw() {
  const context = ui.canvas.getContext("2d");
  if (context === null) return;
  const { width, height } = ui.canvas;
  const scale = 5; // pixels per world unit
  const originX = demo.me.x - width / 2 / scale;
  const originY = demo.me.y - height / 2 / scale;
  const toScreen = (x, y) => [
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

function watch(joined) {
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

/** `config.json` from the server: `{ masterUrl, fragmentSize, clusterName? }`. */
let config;

async function start() {
  try {
    const response = await fetch("./config.json");
    config = await response.json();
    requestAnimationFrame(draw);
    const client = await sustenet.SustenetClient.connect({
      url: config.masterUrl, // over WebSocket; clusters at the ws endpoint of their ticket
      keepaliveMs: 2000,
      reconnect: { minMs: 250, maxMs: 2000 },
    });
    // A cluster serving the page names itself: join it (the master's choice if not listed).
    const named = config.clusterName === undefined
      ? undefined
      : (await client.listClusters()).find((c) => c.name === config.clusterName);
    watch(await client.join(named?.id ?? "auto"));
  } catch (error) {
    demo.error = error instanceof Error ? error.message : String(error);
    setState("failed", demo.error);
  }
}

start();
