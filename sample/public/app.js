// The chat page: a deliberately small rws.v1 client written against the browser's WebSocket.
// (The library's own reconnecting client, with resume and an offline queue, comes later.)

const PING_EVERY_MS = 25_000; // `$ping` keeps proxies from idling the connection out
const BACKOFF = { initialMs: 1000, maxMs: 30_000, factor: 2, jitter: 0.5 };
const FINAL_CLOSE_CODES = new Set([1008, 4003]); // policy violation, forbidden: retrying won't help

const $ = (selector) => document.querySelector(selector);
const ui = {
  state: $('#state'),
  session: $('#session'),
  online: $('#online'),
  retry: $('#retry'),
  messages: $('#messages'),
  sayForm: $('#say-form'),
  text: $('#text'),
  nickForm: $('#nick-form'),
  nick: $('#nick'),
};

let socket;
let attempt = 0; // failed connections since the last `$ready`
let nextId = 1; // message ids count 1, 2, 3 … per session
let pingTimer;
let retryTimer;
const pending = new Map(); // id → event name, until the server answers

// --- connection ------------------------------------------------------------------------

function connect() {
  clearTimeout(retryTimer);
  retryTimer = undefined;
  setState(attempt === 0 ? 'connecting' : 'reconnecting');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  socket = new WebSocket(`${scheme}://${location.host}/ws`, 'rws.v1');
  socket.onopen = () => socket.send(JSON.stringify({ event: '$hello', data: {} }));
  socket.onmessage = (message) => onFrame(JSON.parse(message.data));
  socket.onclose = onClose;
}

function onClose({ code, reason }) {
  clearInterval(pingTimer);
  pending.clear();
  ui.online.textContent = '–';
  if (ui.state.dataset.state === 'open') addLine('system', `Disconnected (${code}${reason ? `: ${reason}` : ''})`);
  if (FINAL_CLOSE_CODES.has(code)) {
    setState('closed');
    ui.retry.textContent = `closed ${code}${reason ? `: ${reason}` : ''}`;
    return;
  }
  attempt += 1;
  const delay = backoff(attempt);
  setState('reconnecting');
  ui.retry.textContent = `closed ${code}, retry ${attempt} in ${(delay / 1000).toFixed(1)} s`;
  retryTimer = setTimeout(connect, delay);
}

/** min(max, initial × factor^(n−1)), then ± jitter; the exponent is clamped so it never overflows. */
function backoff(n) {
  const { initialMs, maxMs, factor, jitter } = BACKOFF;
  const base = Math.min(maxMs, initialMs * factor ** Math.min(n - 1, 30));
  return base * (1 - jitter + 2 * jitter * Math.random());
}

// Back online: don't sit out the rest of the backoff.
window.addEventListener('online', () => {
  if (retryTimer !== undefined) connect();
});

function send(event, data) {
  if (socket?.readyState !== WebSocket.OPEN) return;
  const id = nextId++;
  pending.set(id, event);
  socket.send(JSON.stringify({ event, data, id }));
}

// --- frames from the server ------------------------------------------------------------

function onFrame(frame) {
  const { event, data } = frame;
  switch (event) {
    case '$ready':
      attempt = 0;
      nextId = 1;
      ui.session.textContent = data.sessionId;
      ui.retry.textContent = '';
      setState('open');
      clearInterval(pingTimer);
      pingTimer = setInterval(() => socket.send(JSON.stringify({ event: '$ping', data: Date.now() })), PING_EVERY_MS);
      if (ui.nick.value.trim()) send('nick', { name: ui.nick.value.trim() }); // keep the nick across reconnects
      return;
    case '$pong':
      return;
    case '$ack':
      pending.delete(data.ref);
      return;
    case '$error':
      showError(data);
      return;
    case 'welcome':
      ui.online.textContent = data.online;
      addLine('system', `Welcome, ${data.name}. ${data.online} online.`);
      return;
    case 'joined':
      ui.online.textContent = data.online;
      addLine('system', `${data.name} joined`);
      return;
    case 'left':
      ui.online.textContent = data.online;
      addLine('system', `${data.name} left`);
      return;
    case 'renamed':
      addLine('system', `${data.from} is now ${data.to}`);
      return;
    case 'said':
      addMessage(data);
      return;
    default:
      if (frame.ref !== undefined) onReply(frame); // the answer to one of our messages
  }
}

function onReply({ event, data, ref }) {
  pending.delete(ref);
  if (event === 'nick') ui.nick.value = data.name;
}

function showError({ code, message, ref, details }) {
  const what = ref !== undefined && pending.has(ref) ? `${pending.get(ref)} rejected: ` : '';
  pending.delete(ref);
  const line = addLine('error', `${what}${code} — ${message}`);
  for (const { property, constraints } of details ?? []) {
    const item = document.createElement('div');
    item.className = 'detail';
    item.textContent = `${property}: ${Object.values(constraints).join('; ')}`;
    line.append(item);
  }
}

// --- rendering -------------------------------------------------------------------------

function setState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  const open = state === 'open';
  for (const control of document.querySelectorAll('form input, form button')) control.disabled = !open;
  if (open) ui.text.focus();
}

function addLine(kind, text) {
  const line = document.createElement('li');
  line.className = kind;
  line.textContent = text;
  return append(line);
}

function addMessage({ from, text, at }) {
  const line = document.createElement('li');
  line.className = 'said';
  const time = document.createElement('time');
  time.dateTime = at;
  time.textContent = new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const name = document.createElement('b');
  name.textContent = from;
  const body = document.createElement('span');
  body.textContent = text;
  line.append(time, name, body);
  return append(line);
}

function append(line) {
  const list = ui.messages;
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(line);
  if (atBottom) list.scrollTop = list.scrollHeight;
  return line;
}

// --- forms -----------------------------------------------------------------------------

ui.sayForm.addEventListener('submit', (submit) => {
  submit.preventDefault();
  send('say', { text: ui.text.value }); // validated by the server; errors show up in the list
  ui.text.value = '';
});

ui.nickForm.addEventListener('submit', (submit) => {
  submit.preventDefault();
  send('nick', { name: ui.nick.value.trim() });
});

connect();
