// The chat page, on the library's reconnecting client: the browser bundle of
// `nestjs-reliable-ws/client`, served by the sample app at /client/ from dist/browser/.
// The client reconnects with backoff and jitter (at once when the browser comes back online),
// keeps sends in a bounded queue while offline, pings to check liveness and correlates replies.
import { ReliableWsClient, RequestError } from '/client/reliable-ws-client.js';

const SAY_TIMEOUT_MS = 60_000; // a line typed while offline waits this long in the queue

const $ = (selector) => document.querySelector(selector);
const ui = {
  state: $('#state'),
  session: $('#session'),
  online: $('#online'),
  queue: $('#queue'),
  retry: $('#retry'),
  messages: $('#messages'),
  sayForm: $('#say-form'),
  text: $('#text'),
  nickForm: $('#nick-form'),
  nick: $('#nick'),
};

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const client = new ReliableWsClient(`${scheme}://${location.host}/ws`);
let everReady = false;
let nick = ''; // the name set with the nick form, set again on a new session

// --- connection ------------------------------------------------------------------------

client.on('$state', (state) => {
  setState(state);
  if (state === 'open') ui.retry.textContent = '';
});

client.on('$reconnecting', ({ attempt, delayMs }) => {
  ui.online.textContent = '–';
  ui.retry.textContent = `retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`;
});

client.on('$close', ({ code, reason }) => {
  if (ui.state.dataset.state === 'open') addLine('system', `Disconnected (${code}${reason ? `: ${reason}` : ''})`);
});

client.on('$failed', (error) => {
  ui.retry.textContent = '';
  addLine('error', `Gave up: ${error.message}. Reload the page to try again.`);
});

// Runs before the client sends what was queued while offline, so the nick goes first.
client.on('$ready', ({ sessionId, resumed, missed }) => {
  ui.session.textContent = sessionId;
  if (resumed) {
    addLine('system', missed ? 'Reconnected; some messages were missed.' : 'Reconnected, nothing missed.');
  } else {
    if (everReady) addLine('system', 'Reconnected with a new session; messages sent meanwhile may be missing.');
    if (nick) void setNick(nick);
  }
  everReady = true;
  showQueue();
});

// A `$error` that answers no request of ours (requests reject with a RequestError instead).
client.on('$error', (error) => showError(error));

// --- pushes from the server --------------------------------------------------------------

client.on('welcome', ({ name, online }) => {
  ui.online.textContent = online;
  addLine('system', `Welcome, ${name}. ${online} online.`);
});
client.on('joined', ({ name, online }) => {
  ui.online.textContent = online;
  addLine('system', `${name} joined`);
});
client.on('left', ({ name, online }) => {
  ui.online.textContent = online;
  addLine('system', `${name} left`);
});
client.on('renamed', ({ from, to }) => addLine('system', `${from} is now ${to}`));
client.on('said', (message) => addMessage(message));

// --- requests ----------------------------------------------------------------------------

/** Sends `event` as a request; a rejection shows its `$error` code (or TIMEOUT, …) inline. */
async function request(event, data, options) {
  const reply = client.request(event, data, options);
  showQueue();
  try {
    return await reply;
  } catch (error) {
    if (error instanceof RequestError) showError({ code: error.code, message: error.message, details: error.details }, event);
    else addLine('error', `${event} failed: ${error.message}`);
    return undefined;
  } finally {
    showQueue();
  }
}

async function setNick(name) {
  const reply = await request('nick', { name });
  if (reply) ui.nick.value = nick = reply.name;
}

// --- rendering -------------------------------------------------------------------------

function setState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  // Lines typed while reconnecting wait in the client's queue; only a closed client takes none.
  const usable = state !== 'closed' && state !== 'failed';
  for (const control of document.querySelectorAll('form input, form button')) control.disabled = !usable;
  if (state === 'open' && document.activeElement !== ui.nick) ui.text.focus();
  showQueue();
}

function showQueue() {
  const queued = client.queueLength;
  ui.queue.textContent = queued === 0 ? '' : `${queued} unsent`;
}

function showError({ code, message, details }, event) {
  const line = addLine('error', `${event ? `${event} rejected: ` : ''}${code} — ${message}`);
  line.dataset.code = code;
  for (const { property, constraints } of Array.isArray(details) ? details : []) {
    const item = document.createElement('div');
    item.className = 'detail';
    item.textContent = `${property}: ${Object.values(constraints ?? {}).join('; ')}`;
    line.append(item);
  }
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
  // Validated by the server: an empty or too long line comes back as VALIDATION_FAILED.
  void request('say', { text: ui.text.value }, { timeoutMs: SAY_TIMEOUT_MS });
  ui.text.value = '';
});

ui.nickForm.addEventListener('submit', (submit) => {
  submit.preventDefault();
  void setNick(ui.nick.value.trim());
});

setState(client.state);
