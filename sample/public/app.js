// The chat page, on the library's reconnecting client: the browser bundle of
// `nestjs-reliable-ws/client`, served by the sample app at /client/ from dist/browser/.
// The client reconnects with backoff and jitter (at once when the browser comes back online),
// keeps sends in a bounded queue while offline, pings to check liveness and correlates replies.
// With ?share=1 every tab of this origin shares one connection and one session, held by the
// SharedWorker script of the package (`share` option). Files dropped on the messages (or picked)
// are shared with the current room: uploaded in chunks with progress, downloaded on a click.
import { ReliableWsClient, RequestError } from '/client/reliable-ws-client.js';

const SAY_TIMEOUT_MS = 60_000; // a line typed while offline waits this long in the queue
const ROOM_TIMEOUT_MS = 60_000; // so does a join or leave

const $ = (selector) => document.querySelector(selector);
const ui = {
  state: $('#state'),
  session: $('#session'),
  name: $('#name'),
  queue: $('#queue'),
  retry: $('#retry'),
  rooms: $('#rooms'),
  joinForm: $('#join-form'),
  room: $('#room'),
  messages: $('#messages'),
  sayForm: $('#say-form'),
  sayRoom: $('#say-room'),
  text: $('#text'),
  file: $('#file'),
  nickForm: $('#nick-form'),
  nick: $('#nick'),
  share: $('#share'),
  tabs: $('#tabs'),
};

const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const sharing = new URLSearchParams(location.search).get('share') === '1';
const client = new ReliableWsClient(
  `${scheme}://${location.host}/ws`,
  sharing ? { share: { workerUrl: '/client/reliable-ws-shared-worker.js' } } : {},
);
let everReady = false;
let welcomed = false; // a new session's welcome after the first is no news either
let resumed = false; // whether the current session is a resumed one (then `welcome` is no news)
let nick = ''; // the name set with the nick form, set again on a new session

// Rooms: what the server last said the session is in, plus joins and leaves still under way
// (they may wait in the client's queue while offline). The current room is where lines go: it
// changes when the person picks, joins or leaves a room, never because a new session rejoins.
let rooms = new Set();
const joining = new Map(); // room → the pending request
const leaving = new Map();
let current = '';

// --- connection ------------------------------------------------------------------------

ui.share.checked = sharing;
ui.share.addEventListener('change', () => {
  const url = new URL(location.href);
  if (ui.share.checked) url.searchParams.set('share', '1');
  else url.searchParams.delete('share');
  location.assign(url);
});
if (sharing && !client.shared) ui.tabs.textContent = 'no SharedWorker here: own connection';
client.on('$tabs', (count) => {
  ui.tabs.textContent = `shared by ${count} tab${count === 1 ? '' : 's'}`;
});

client.on('$state', (state) => {
  setState(state);
  if (state !== 'open') return;
  ui.retry.textContent = '';
  // A tab that joins a shared connection already open hears no $ready (it follows 'open' at
  // once otherwise) and no welcome: it asks.
  queueMicrotask(() => {
    if (!everReady) void catchUp();
  });
  if (document.activeElement !== ui.nick && document.activeElement !== ui.room) ui.text.focus();
});

client.on('$reconnecting', ({ attempt, delayMs }) => {
  ui.retry.textContent = `retry ${attempt} in ${(delayMs / 1000).toFixed(1)} s`;
});

client.on('$close', ({ code, reason }) => {
  if (ui.state.dataset.state === 'open') addLine('system', `Disconnected (${code}${reason ? `: ${reason}` : ''})`);
});

client.on('$failed', (error) => {
  ui.retry.textContent = '';
  addLine('error', `Gave up: ${error.message}. Reload the page to try again.`);
});

// Runs before the client sends what was queued while offline, so a resync goes first: on a new
// session (the old one expired, or the server restarted) the page joins its rooms again and sets
// its nick again before any queued line reaches a room.
client.on('$ready', ({ sessionId, resumed: isResumed, missed }) => {
  ui.session.textContent = sessionId;
  resumed = isResumed;
  if (isResumed) {
    addLine('system', 'Reconnected, nothing missed.');
  } else if (missed || everReady) {
    addLine('system', 'Reconnected with a new session; messages meanwhile may be missing.');
    resync();
  }
  everReady = true;
  showQueue();
});

/**
 * Joins again, quietly, the rooms the page believes it is in (the new session knows none of
 * them), after setting the nick again: the room sees neither a join nor a rename.
 */
function resync() {
  const wanted = new Set([...rooms, ...joining.keys()]);
  if (current) wanted.add(current);
  for (const room of leaving.keys()) wanted.delete(room);
  rooms = new Set();
  if (nick) void setNick(nick, { quiet: true });
  for (const room of wanted) void joinRoom(room, { select: false, quiet: true });
  renderRooms();
}

/** Who this session is and where it is, for a tab that came after the connection opened. */
async function catchUp() {
  const me = await request('whoami', {});
  if (!me || everReady) return;
  everReady = true;
  ui.session.textContent = me.sessionId;
  ui.name.textContent = me.name;
  setRooms(me.rooms);
}

// A `$error` that answers no request of ours (requests reject with a RequestError instead).
client.on('$error', (error) => showError(error));

// --- pushes from the server --------------------------------------------------------------

client.on('welcome', ({ name, rooms: serverRooms }) => {
  ui.name.textContent = name;
  ui.nick.placeholder = name;
  // The server's list as of now; joins of a resync still under way stay listed as pending.
  setRooms(serverRooms);
  if (!resumed && !welcomed) addLine('system', `Welcome, ${name}. You are in ${serverRooms.map((room) => `#${room}`).join(', ') || 'no room'}.`);
  welcomed = true;
});
client.on('said', (message) => addMessage(message));
client.on('joined', ({ room, name }) => addLine('system', `${name} joined`, room));
client.on('left', ({ room, name }) => addLine('system', `${name} left`, room));
client.on('renamed', ({ room, from, to }) => addLine('system', `${from} is now ${to}`, room));
client.on('shared', (file) => addFile(file));

// --- requests ----------------------------------------------------------------------------

/** Sends `event` as a request; a rejection shows its `$error` code (or TIMEOUT, …) inline. */
async function request(event, data, options) {
  return answerOf(event, client.request(event, data, options));
}

/** The reply to `event`, or undefined after showing why there is none. */
async function answerOf(event, reply) {
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

async function joinRoom(room, { select = true, quiet = false } = {}) {
  const pending = request('join', quiet ? { room, quiet } : { room }, { timeoutMs: ROOM_TIMEOUT_MS });
  joining.set(room, pending);
  if (!current) current = room;
  renderRooms();
  const reply = await pending;
  if (joining.get(room) === pending) joining.delete(room);
  if (reply) setRooms(reply.rooms);
  else if (room === current) current = ''; // the join failed: pick another room
  if (reply && select) selectRoom(room);
  else renderRooms();
}

async function leaveRoom(room) {
  const pending = request('leave', { room }, { timeoutMs: ROOM_TIMEOUT_MS });
  leaving.set(room, pending);
  renderRooms();
  const reply = await pending;
  if (leaving.get(room) === pending) leaving.delete(room);
  if (reply && room === current) current = '';
  if (reply) setRooms(reply.rooms);
  else renderRooms();
}

async function setNick(name, { quiet = false } = {}) {
  const reply = await request('nick', quiet ? { name, quiet } : { name });
  if (!reply) return;
  ui.nick.value = nick = reply.name;
  ui.name.textContent = reply.name;
  if (!quiet) addLine('system', `You are now ${reply.name}`);
}

/** A line on its way: shown as pending (greyed) until the server answers, then the room's own copy shows. */
async function say(room, text) {
  const line = addLine('outgoing', text, room);
  line.title = 'not answered yet';
  await request('say', { room, text }, { timeoutMs: SAY_TIMEOUT_MS });
  line.remove();
}

// --- files -------------------------------------------------------------------------------
// Sharing takes two steps: `offer` says what the file is and where it goes (the server checks
// name, type and size), then `client.upload('share', bytes)` sends the bytes in chunks, with
// progress, continued after a dropped connection. The room hears `shared`. A click on a shared
// file asks `fetch`, and the server streams the bytes to this session as `file:<id>`.

const downloads = new Map(); // `file:<id>` → the progress bar of that download

async function shareFile(file) {
  const room = current;
  if (!file || ui.file.disabled) return;
  const line = addLine('outgoing', `Sharing ${file.name}… `, room);
  const bar = line.appendChild(progressBar(file.size));
  if (await request('offer', { room, name: file.name, type: file.type, size: file.size })) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    await answerOf('share', client.upload('share', bytes, { onProgress: (sent) => (bar.value = sent) }));
  }
  line.remove(); // the room's `shared` line shows the file, or an error line says why not
}

async function download(file, line, button) {
  button.disabled = true;
  const bar = line.appendChild(progressBar(file.size));
  const event = `file:${file.id}`;
  downloads.set(event, bar);
  const stop = () => {
    unsubscribe();
    downloads.delete(event);
  };
  const unsubscribe = client.on(event, (bytes) => {
    stop();
    offerSave(file, bytes, button);
  });
  if (!(await request('fetch', { id: file.id }))) {
    stop();
    bar.remove();
    button.disabled = false;
  }
}

client.on('$progress', ({ event, received }) => {
  const bar = downloads.get(event);
  if (bar) bar.value = received;
});

/** Replaces the button with a link that saves the bytes under the file's name. */
function offerSave(file, bytes, button) {
  const link = document.createElement('a');
  // Always saved, never opened as a page of this origin, whatever type the sender claimed.
  link.href = URL.createObjectURL(new Blob([bytes], { type: 'application/octet-stream' }));
  link.download = file.name;
  link.className = 'save';
  link.textContent = `Save ${file.name}`;
  button.replaceWith(link);
}

// --- rendering -------------------------------------------------------------------------

function setRooms(list) {
  rooms = new Set(list);
  renderRooms();
}

function selectRoom(room) {
  current = room;
  renderRooms();
  if (document.activeElement !== ui.room) ui.text.focus();
}

/** The room list (joined and pending, sorted) and the say form's room. */
function renderRooms() {
  const known = [...rooms, ...joining.keys()];
  if (!current) current = known.includes('lobby') ? 'lobby' : (known.sort()[0] ?? '');
  // The current room stays listed while a new session rejoins it.
  const shown = [...new Set(current ? [...known, current] : known)].sort();
  const items = shown.map((room) => {
    const item = document.createElement('li');
    item.dataset.room = room;
    const pending = joining.has(room) || leaving.has(room) || !rooms.has(room);
    item.classList.toggle('pending', pending);
    const select = document.createElement('button');
    select.type = 'button';
    select.className = 'select';
    select.textContent = `#${room}`;
    if (pending) select.title = joining.has(room) ? 'joining…' : 'leaving…';
    if (room === current) select.setAttribute('aria-current', 'true');
    select.addEventListener('click', () => selectRoom(room));
    const leave = document.createElement('button');
    leave.type = 'button';
    leave.className = 'leave';
    leave.textContent = '×';
    leave.title = `Leave #${room}`;
    leave.setAttribute('aria-label', `Leave #${room}`);
    leave.addEventListener('click', () => void leaveRoom(room));
    item.append(select, leave);
    return item;
  });
  ui.rooms.replaceChildren(...items);
  if (!items.length) {
    const empty = document.createElement('li');
    empty.className = 'empty';
    empty.textContent = 'No room: join one below.';
    ui.rooms.append(empty);
  }
  ui.sayRoom.textContent = current ? `#${current}` : '—';
  ui.text.placeholder = current ? `Message #${current}` : 'Join a room first';
  setState(client.state);
}

function setState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  // Lines typed while reconnecting wait in the client's queue; only a closed client takes none.
  const usable = state !== 'closed' && state !== 'failed';
  for (const control of document.querySelectorAll('form input, form button, #rooms button')) control.disabled = !usable;
  for (const control of ui.sayForm.querySelectorAll('input, button')) control.disabled ||= !current;
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

function roomTag(room) {
  const tag = document.createElement('span');
  tag.className = 'tag';
  tag.textContent = `#${room}`;
  return tag;
}

function addLine(kind, text, room) {
  const line = document.createElement('li');
  line.className = kind;
  if (room) {
    line.dataset.room = room;
    line.append(roomTag(room), ' ');
  }
  line.append(text);
  return append(line);
}

function addMessage({ room, from, text, at }) {
  const line = document.createElement('li');
  line.className = 'said';
  line.dataset.room = room;
  const time = document.createElement('time');
  time.dateTime = at;
  time.textContent = new Date(at).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const name = document.createElement('b');
  name.textContent = from;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  line.append(time, roomTag(room), name, body);
  return append(line);
}

function addFile(file) {
  const line = document.createElement('li');
  line.className = 'file';
  line.dataset.room = file.room;
  line.dataset.file = file.id;
  const from = document.createElement('b');
  from.textContent = file.from;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'download';
  button.textContent = `${file.name} (${formatSize(file.size)})`;
  button.title = file.type || 'unknown type';
  button.addEventListener('click', () => void download(file, line, button));
  line.append(roomTag(file.room), from, ' shared ', button);
  return append(line);
}

function progressBar(max) {
  const bar = document.createElement('progress');
  bar.max = max;
  bar.value = 0;
  return bar;
}

function formatSize(bytes) {
  return bytes < 1024 * 1024 ? `${Math.ceil(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
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
  if (!current) return;
  // Validated by the server: an empty or too long line comes back as VALIDATION_FAILED.
  void say(current, ui.text.value);
  ui.text.value = '';
});

ui.joinForm.addEventListener('submit', (submit) => {
  submit.preventDefault();
  // Validated by the server too: 1–32 characters of a-z, 0-9 and -.
  const room = ui.room.value.trim();
  ui.room.value = '';
  void joinRoom(room);
});

ui.file.addEventListener('change', () => {
  void shareFile(ui.file.files[0]);
  ui.file.value = '';
});

ui.messages.addEventListener('dragover', (event) => {
  event.preventDefault();
  ui.messages.classList.add('dropping');
});
ui.messages.addEventListener('dragleave', () => ui.messages.classList.remove('dropping'));
ui.messages.addEventListener('drop', (event) => {
  event.preventDefault();
  ui.messages.classList.remove('dropping');
  void shareFile(event.dataTransfer.files[0]);
});

ui.nickForm.addEventListener('submit', (submit) => {
  submit.preventDefault();
  void setNick(ui.nick.value.trim());
});

renderRooms();
