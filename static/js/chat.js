// The chat page: the list, a thread with older messages on scroll, the composer (sending, sent,
// failed with retry; a throttled send waits and goes again with its text kept), "New chat", the
// sync's progress, and live updates over a websocket that reconnects and catches up.
// Message HTML comes sanitized from the server; everything else is inserted as text.

const config = JSON.parse(document.getElementById("chat-config").textContent);
const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
const AUTO_RETRIES = 5;
// Answers after which the message is certainly not in Teams: the page sends it again by itself.
// ("graph_unavailable" is not one: Teams may have stored it, so the person decides.)
const NOT_SENT_YET = new Set(["graph_throttled", "busy", "in_progress", "entra_unavailable"]);

function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

async function api(url, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json", "X-CSRFToken": csrf };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(url, {
      method,
      headers,
      credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch {
    return { ok: false, status: 0, data: { message: "The portal could not be reached. Check your connection." } };
  }
  let data = {};
  try {
    data = await response.json();
  } catch {
    data = {};
  }
  const retryAfter = Number(response.headers.get("Retry-After")) || data.retry_after || null;
  return { ok: response.ok, status: response.status, data, retryAfter };
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function when(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

// the chat list ---------------------------------------------------------------------------
const listNav = document.getElementById("chat-list");
let listTimer = null;

function localTimes(root) {
  // The server writes UTC; people read their own time (today: the hour; before: the day).
  const today = new Date().toDateString();
  root.querySelectorAll("time.chat-time").forEach((node) => {
    const at = new Date(node.dateTime);
    node.textContent =
      at.toDateString() === today
        ? at.toLocaleTimeString([], { timeStyle: "short" })
        : at.toLocaleDateString([], { dateStyle: "medium" });
  });
}

async function refreshList() {
  // The open thread, when visible, is drawn read (its POST to readUrl records it).
  const seen = config.chat && document.visibilityState === "visible" ? "1" : "";
  const params = new URLSearchParams({ current: config.chat || "", seen });
  const { ok, data } = await api(`${config.listUrl}?${params}`);
  if (ok) {
    listNav.innerHTML = data.html;
    localTimes(listNav);
  }
}

localTimes(listNav);

function refreshListSoon() {
  clearTimeout(listTimer);
  listTimer = setTimeout(refreshList, 300);
}

listNav.addEventListener("click", async (event) => {
  const more = event.target.closest("#chat-list-more");
  if (!more) return;
  more.disabled = true;
  const params = new URLSearchParams({ current: config.chat || "", page: more.dataset.page });
  const { ok, data } = await api(`${config.listUrl}?${params}`);
  if (!ok) {
    more.disabled = false;
    return;
  }
  const holder = document.createElement("template");
  holder.innerHTML = data.html;
  localTimes(holder.content);
  const list = listNav.querySelector("ul.chat-list");
  holder.content.querySelectorAll("li.chat-entry").forEach((li) => {
    if (!list.querySelector(`li[data-chat="${li.dataset.chat}"]`)) list.append(li);
  });
  const next = holder.content.querySelector("#chat-list-more");
  if (next) more.replaceWith(next);
  else more.closest("p").remove();
});

// the sync's progress ---------------------------------------------------------------------
const syncBox = document.getElementById("sync-status");
const syncText = document.getElementById("sync-text");
const syncBar = document.getElementById("sync-progress");
const STOPPED = {
  consent_revoked: "Sync stopped: your organization's consent was revoked. An administrator must grant it again.",
  sign_in_again: "Sync stopped: your Microsoft sign-in has expired. Sign out and sign in again to keep your chats up to date.",
  tenant_not_active: "Sync stopped: your organization is not connected any more.",
  forbidden: "Sync stopped: Teams refused to list your chats.",
};

function showSync(sync) {
  const before = syncBox.dataset.status;
  syncBox.dataset.status = sync.status;
  syncBar.hidden = sync.status !== "running" || !sync.chats_total;
  if (sync.status === "running") {
    syncBar.max = Math.max(1, sync.chats_total);
    syncBar.value = sync.chats_done;
    syncBar.textContent = `${sync.chats_done} of ${sync.chats_total}`;
    syncText.textContent = sync.chats_total
      ? `Syncing your Teams chats: ${sync.chats_done} of ${sync.chats_total} chats, ${sync.messages} messages.`
      : "Syncing your Teams chats…";
  } else if (sync.status === "idle") {
    syncText.textContent = "Up to date.";
  } else if (sync.status === "retrying") {
    syncText.textContent = "Teams asked us to slow down; the sync goes on shortly.";
  } else if (sync.status === "stopped") {
    syncText.textContent = STOPPED[sync.reason] || "Sync stopped.";
  } else {
    syncText.textContent = "Your Teams chats appear here after the first sync.";
  }
  if (before === "running" && sync.status !== "running") refreshListSoon();
}

document.getElementById("sync-now").addEventListener("click", async () => {
  const { ok, data } = await api(config.syncUrl, { method: "POST" });
  if (ok) showSync({ ...data.sync, status: data.queued ? "running" : data.sync.status });
});

showSync(config.sync);
// Opening the chats asks for a sync when none ran lately (a GET changes nothing: this POST does).
if (config.syncStale) {
  api(config.syncUrl, { method: "POST" }).then(({ ok, data }) => {
    if (ok) showSync({ ...data.sync, status: data.queued ? "running" : data.sync.status });
  });
}

// the thread ------------------------------------------------------------------------------
const thread = config.chat ? setUpThread() : null;

function setUpThread() {
  const scroller = document.getElementById("thread-scroll");
  const list = document.getElementById("messages");
  const empty = document.getElementById("thread-empty");
  const older = document.getElementById("load-older");
  const byId = new Map();
  // The oldest message loaded: "older" pages start before it.
  let oldest = config.messages.length ? config.messages[0] : null;
  let hasOlder = config.hasOlder;
  let loading = false;
  let readTimer = null;

  function render(message) {
    const li = el("li", "message");
    li.dataset.id = message.id;
    li.dataset.created = message.created;
    li.dataset.modified = message.modified;
    li.classList.toggle("mine", message.mine);
    li.classList.toggle("deleted", message.deleted);
    li.classList.toggle("system", Boolean(message.event));
    if (message.event) {
      li.append(el("p", "event", message.event));
      return li;
    }
    const head = el("p", "message-head");
    head.append(el("span", "sender", message.mine ? "You" : message.sender || "Someone"), " ");
    const time = el("time", "message-time", when(message.created));
    time.dateTime = message.created;
    head.append(time);
    if (message.edited) head.append(" ", el("span", "edited", "Edited"));
    li.append(head);
    if (message.deleted) {
      li.append(el("p", "message-body", "This message was deleted."));
    } else {
      const body = el("div", "message-body");
      body.innerHTML = message.html; // sanitized by the server
      li.append(body);
    }
    return li;
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function toBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  function later(a, b) {
    return a.created > b.dataset.created || (a.created === b.dataset.created && a.id > b.dataset.id);
  }

  function upsert(message) {
    const current = byId.get(message.id);
    if (current && current.dataset.modified >= message.modified) return;
    // A change to a message older than those loaded shows when its page is loaded.
    if (!current && hasOlder && oldest && !later(message, { dataset: oldest })) return;
    const node = render(message);
    byId.set(message.id, node);
    if (current) {
      current.replaceWith(node);
      return;
    }
    // After the latest message that comes before it; messages being sent stay last.
    let anchor = list.lastElementChild;
    while (anchor && (anchor.classList.contains("pending") || !later(message, anchor))) {
      anchor = anchor.previousElementSibling;
    }
    if (anchor) anchor.after(node);
    else list.prepend(node);
    empty.hidden = true;
  }

  function add(messages) {
    const stick = atBottom();
    messages.forEach(upsert);
    if (stick) toBottom();
  }

  async function loadOlder() {
    if (!hasOlder || loading || !oldest) return;
    loading = true;
    older.disabled = true;
    const params = new URLSearchParams({ before: oldest.created, before_id: oldest.id });
    const { ok, data } = await api(`${config.messagesUrl}?${params}`);
    loading = false;
    older.disabled = false;
    if (!ok) return;
    const height = scroller.scrollHeight;
    const fragment = document.createDocumentFragment();
    data.messages.forEach((message) => {
      if (byId.has(message.id)) return;
      const node = render(message);
      byId.set(message.id, node);
      fragment.append(node);
    });
    list.prepend(fragment);
    scroller.scrollTop += scroller.scrollHeight - height;
    if (data.messages.length) oldest = data.messages[0];
    hasOlder = data.has_older;
    older.hidden = !hasOlder;
  }

  // What the mirror wrote since the page was drawn or last caught up (by the server's clock,
  // not Teams': a change Teams made earlier can reach the mirror later).
  let cursor = config.now;

  async function catchUp() {
    const { ok, data } = await api(`${config.changesUrl}?${new URLSearchParams({ since: cursor })}`);
    if (!ok) return;
    if (data.truncated) {
      location.reload();
      return;
    }
    add(data.messages);
    if (data.messages.length) markReadSoon();
    cursor = data.now;
  }

  function markReadSoon() {
    if (document.visibilityState !== "visible") return;
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      await api(config.readUrl, { method: "POST" });
      refreshListSoon();
    }, 1000);
  }

  older.addEventListener("click", loadOlder);
  older.hidden = !hasOlder;
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadOlder();
  }, { root: scroller }).observe(older);
  document.addEventListener("visibilitychange", markReadSoon);

  add(config.messages);
  empty.hidden = config.messages.length > 0;
  toBottom();
  // The page was drawn with this chat read; this records it (a GET changes nothing).
  if (document.visibilityState === "visible") api(config.readUrl, { method: "POST" });
  return { add, catchUp, markReadSoon, list, empty, toBottom };
}

// the composer ----------------------------------------------------------------------------
if (thread) setUpComposer(thread);

function setUpComposer(thread) {
  const form = document.getElementById("composer");
  const box = document.getElementById("composer-text");
  const error = document.getElementById("composer-error");

  function pendingNode(text) {
    const li = el("li", "message mine pending");
    const head = el("p", "message-head");
    head.append(el("span", "sender", "You"), " ", el("span", "send-state", "Sending…"));
    li.append(head, el("p", "message-body plain", text));
    const actions = el("p", "send-actions");
    const retry = el("button", "link", "Retry");
    retry.type = "button";
    retry.hidden = true;
    const discard = el("button", "link", "Discard");
    discard.type = "button";
    discard.hidden = true;
    actions.append(retry, " ", discard);
    li.append(actions);
    // One id for every try of this message: a try after one that reached Teams posts nothing new.
    const clientId = newId();
    li.dataset.clientId = clientId;
    retry.addEventListener("click", () => send(li, text, 0));
    discard.addEventListener("click", () => li.remove());
    return li;
  }

  function setState(li, state, words) {
    li.dataset.state = state;
    li.querySelector(".send-state").textContent = words;
    const failed = state === "failed";
    li.querySelectorAll(".send-actions button").forEach((b) => {
      b.hidden = !failed;
    });
  }

  async function send(li, text, attempt) {
    setState(li, "sending", "Sending…");
    const body = { content: text, client_id: li.dataset.clientId };
    const { ok, data, retryAfter } = await api(config.messagesUrl, { method: "POST", body });
    if (ok) {
      li.remove();
      thread.add([data.message]);
      thread.toBottom();
      return;
    }
    if (NOT_SENT_YET.has(data.error) && attempt < AUTO_RETRIES) {
      let wait = Math.max(1, Math.round(retryAfter || 2 ** attempt));
      const tick = () => setState(li, "waiting", `Teams is busy; sending again in ${wait} s…`);
      tick();
      const timer = setInterval(() => {
        wait -= 1;
        if (wait > 0) {
          tick();
          return;
        }
        clearInterval(timer);
        send(li, text, attempt + 1);
      }, 1000);
      return;
    }
    setState(li, "failed", `Not sent: ${data.message || "something went wrong"}`);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = box.value;
    if (!text.trim()) {
      error.textContent = "Type a message first.";
      box.focus();
      return;
    }
    if (text.length > config.maxChars) {
      error.textContent = `A message can have at most ${config.maxChars} characters; this one has ${text.length}.`;
      box.focus();
      return;
    }
    error.textContent = "";
    const li = pendingNode(text);
    thread.list.append(li);
    thread.empty.hidden = true;
    thread.toBottom();
    box.value = "";
    send(li, text, 0);
  });

  box.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
}

// new chat --------------------------------------------------------------------------------
setUpNewChat();

function setUpNewChat() {
  const dialog = document.getElementById("new-chat");
  const form = document.getElementById("new-chat-form");
  const search = document.getElementById("people-search");
  const results = document.getElementById("people-results");
  const topic = document.getElementById("new-chat-topic");
  const error = document.getElementById("new-chat-error");
  const chosen = new Map();
  let timer = null;

  async function find() {
    const { ok, data } = await api(`${config.peopleUrl}?${new URLSearchParams({ q: search.value.trim() })}`);
    results.replaceChildren();
    if (!ok) {
      results.append(el("li", "empty", data.message || "People could not be loaded."));
      return;
    }
    const people = [...data.people];
    chosen.forEach((person, id) => {
      if (!people.some((p) => p.id === id)) people.unshift(person);
    });
    if (!people.length) {
      results.append(el("li", "empty", "Nobody found. People appear once they have used the portal or share a chat with you."));
      return;
    }
    people.forEach((person) => {
      const li = el("li");
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.value = person.id;
      box.checked = chosen.has(person.id);
      box.addEventListener("change", () => {
        if (box.checked) chosen.set(person.id, person);
        else chosen.delete(person.id);
      });
      label.append(box, " ", person.name);
      if (person.email) label.append(" ", el("span", "muted", person.email));
      li.append(label);
      results.append(li);
    });
  }

  document.getElementById("new-chat-button").addEventListener("click", () => {
    error.textContent = "";
    dialog.showModal();
    search.focus();
    find();
  });
  document.getElementById("new-chat-cancel").addEventListener("click", () => dialog.close());
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(find, 250);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen.size) {
      error.textContent = "Choose at least one person.";
      return;
    }
    const start = document.getElementById("new-chat-start");
    start.disabled = true;
    error.textContent = "";
    const { ok, data } = await api(config.createUrl, {
      method: "POST",
      body: { members: [...chosen.keys()], topic: topic.value.trim() },
    });
    start.disabled = false;
    if (ok) location.assign(data.url);
    else error.textContent = data.message || "The chat could not be created.";
  });
}

// live updates ----------------------------------------------------------------------------
const liveBox = el("p", "live-status");
liveBox.setAttribute("role", "status");
syncBox.append(liveBox);
let socket = null;
let attempts = 0;
let everOpen = false;
let pinger = null;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const path = config.chat ? `${config.socketPath}${config.chat}/` : config.socketPath;
  socket = new WebSocket(`${scheme}://${location.host}${path}`);
  socket.addEventListener("open", () => {
    liveBox.textContent = "";
    document.body.dataset.live = "open";
    attempts = 0;
    // Whatever happened while the socket was not there (also before its first open).
    if (thread) thread.catchUp();
    if (everOpen) {
      refreshList();
      api(config.syncUrl).then(({ ok, data }) => ok && showSync(data.sync));
    }
    everOpen = true;
    clearInterval(pinger);
    pinger = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send('{"type":"ping"}'), 25000);
  });
  socket.addEventListener("message", (event) => {
    const data = JSON.parse(event.data);
    if (data.type === "messages" && thread && data.chat === config.chat) {
      thread.add(data.messages);
      thread.markReadSoon();
    } else if (data.type === "chat") {
      refreshListSoon();
    } else if (data.type === "sync") {
      showSync(data);
    }
  });
  socket.addEventListener("close", (event) => {
    document.body.dataset.live = "closed";
    clearInterval(pinger);
    if (event.code >= 4400 && event.code < 4500) {
      liveBox.textContent = "Live updates stopped. Reload the page, or sign in again.";
      return;
    }
    const wait = Math.min(30, 2 ** attempts) * (0.5 + Math.random() / 2);
    attempts += 1;
    liveBox.textContent = "Live updates interrupted; reconnecting…";
    setTimeout(connect, wait * 1000);
  });
}

connect();
