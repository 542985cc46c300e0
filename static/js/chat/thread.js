// The open chat's messages: what the server last said about each (the source of truth), the
// page's own changes under way drawn over it until the server answers, older pages on scroll,
// catching up after the socket was away, marking the chat read, and going to one message.

import { api, config, gettext, say } from "./api.js";
import { renderMessage } from "./message.js";

export function setUpThread({ onListChanged }) {
  const scroller = document.getElementById("thread-scroll");
  const list = document.getElementById("messages");
  const empty = document.getElementById("thread-empty");
  const older = document.getElementById("load-older");
  const known = new Map(); // id -> the server's payload
  const nodes = new Map(); // id -> its <li>
  const changes = new Map(); // id -> [{token, change(payload) -> payload, busy}] under way
  const ui = new Map(); // id -> {editor, pickerOpen}
  const bodies = new Map(); // id -> last html seen (an undone deletion shows it at once)
  let oldest = config.messages.length ? config.messages[0] : null;
  let hasOlder = config.hasOlder;
  let loading = null;
  let readTimer = null;
  let tokens = 0;

  function view(id) {
    return (changes.get(id) || []).reduce((payload, step) => step.change(payload), known.get(id));
  }

  function focusKeyIn(node) {
    const active = document.activeElement;
    if (!active || !node.contains(active)) return null;
    return active === node ? "" : active.dataset.key || null;
  }

  function draw(id) {
    const payload = view(id);
    const steps = changes.get(id) || [];
    const busy = steps.map((s) => s.busy).filter(Boolean).at(-1) || "";
    const node = renderMessage(payload, { busy, ...(ui.get(id) || {}) });
    const old = nodes.get(id);
    nodes.set(id, node);
    if (old) {
      const key = focusKeyIn(old);
      const keepHighlight = old.classList.contains("highlight");
      old.replaceWith(node);
      node.classList.toggle("highlight", keepHighlight);
      if (key === "") node.focus();
      else if (key) [...node.querySelectorAll("[data-key]")].find((n) => n.dataset.key === key)?.focus();
    }
    return node;
  }

  function later(a, b) {
    return a.created > b.created || (a.created === b.created && a.id > b.id);
  }

  function place(node, payload) {
    // After the latest message that comes before it; messages being sent stay last.
    let anchor = list.lastElementChild;
    while (anchor && (anchor.classList.contains("pending") || !later(payload, anchor.dataset))) {
      anchor = anchor.previousElementSibling;
    }
    if (anchor) anchor.after(node);
    else list.prepend(node);
    empty.hidden = true;
  }

  // The server's word on a message. Older than what the page has: ignored; as recent or newer
  // (the same `modified` may carry other reactions): it replaces what the page has.
  function upsert(message) {
    const current = known.get(message.id);
    if (current && Date.parse(message.modified) < Date.parse(current.modified)) return false;
    if (current && JSON.stringify(current) === JSON.stringify(message)) return false;
    // A change to a message older than those loaded shows when its page is loaded.
    if (!current && hasOlder && oldest && !later(message, oldest)) return false;
    known.set(message.id, message);
    if (!message.deleted && message.html) bodies.set(message.id, message.html);
    const waiting = changes.get(message.id) || [];
    const done = waiting.filter((s) => s.until !== undefined && Date.parse(message.modified) > Date.parse(s.until));
    if (done.length) changes.set(message.id, waiting.filter((s) => !done.includes(s)));
    if (current) {
      draw(message.id);
      return false;
    }
    place(draw(message.id), message);
    return true;
  }

  function atBottom() {
    return scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 80;
  }

  function toBottom() {
    scroller.scrollTop = scroller.scrollHeight;
  }

  // Messages from the server (a page, an answer, the socket); answers those new to the page.
  function add(messages) {
    const stick = atBottom();
    const fresh = messages.filter(upsert);
    if (stick) toBottom();
    return fresh;
  }

  // A change of the page's own, drawn at once; `settle` ends it with the server's answer.
  function change(id, step, busy = "") {
    tokens += 1;
    const token = tokens;
    changes.set(id, [...(changes.get(id) || []), { token, change: step, busy }]);
    draw(id);
    return token;
  }

  function settle(id, token, answer) {
    changes.set(id, (changes.get(id) || []).filter((s) => s.token !== token));
    if (!(answer && upsert(answer)) && known.has(id)) draw(id);
  }

  // Teams did it, and the server will say how it looks now (over the socket): the page's own
  // step stays until a copy newer than the one it was drawn on arrives.
  function settleLater(id, token) {
    const since = known.get(id)?.modified;
    const step = (changes.get(id) || []).find((s) => s.token === token);
    if (step) step.until = since;
  }

  function setUi(id, state) {
    ui.set(id, { ...(ui.get(id) || {}), ...state });
    if (known.has(id)) draw(id);
  }

  async function loadOlder() {
    if (!hasOlder || !oldest) return;
    if (loading) return loading;
    loading = (async () => {
      older.disabled = true;
      const params = new URLSearchParams({ before: oldest.created, before_id: oldest.id });
      const { ok, data } = await api(`${config.messagesUrl}?${params}`);
      older.disabled = false;
      if (!ok) return;
      const height = scroller.scrollHeight;
      const fragment = document.createDocumentFragment();
      data.messages.forEach((message) => {
        if (known.has(message.id)) return;
        known.set(message.id, message);
        if (message.html) bodies.set(message.id, message.html);
        fragment.append(draw(message.id));
      });
      list.prepend(fragment);
      scroller.scrollTop += scroller.scrollHeight - height;
      if (data.messages.length) oldest = data.messages[0];
      hasOlder = data.has_older;
      older.hidden = !hasOlder;
    })();
    try {
      await loading;
    } finally {
      loading = null;
    }
  }

  // Goes to a message (a quote, a search result), loading older pages until it is there.
  async function reveal(id) {
    for (let pages = 0; !nodes.has(id) && hasOlder && pages < 20; pages += 1) await loadOlder();
    const node = nodes.get(id);
    if (!node) {
      say(gettext("That message is not in this chat any more."), { fade: true });
      return;
    }
    list.querySelectorAll(".message.highlight").forEach((n) => n.classList.remove("highlight"));
    node.classList.add("highlight");
    node.scrollIntoView({ block: "center" });
    node.focus({ preventScroll: true });
  }

  function revealHash() {
    if (location.hash.startsWith("#m-")) reveal(decodeURIComponent(location.hash.slice(3)));
  }

  // What the mirror wrote since the page was drawn or last caught up (by the server's clock,
  // not Teams': a change Teams made earlier can reach the mirror later).
  let cursor = config.now;

  async function catchUp() {
    const { ok, data } = await api(`${config.changesUrl}?${new URLSearchParams({ since: cursor })}`);
    if (!ok) return [];
    if (data.truncated) {
      location.reload();
      return [];
    }
    const fresh = add(data.messages);
    if (fresh.some((m) => !m.mine)) markReadSoon();
    cursor = data.now;
    return fresh;
  }

  let markedUnread = false;

  function markReadSoon() {
    if (document.visibilityState !== "visible" || markedUnread) return;
    clearTimeout(readTimer);
    readTimer = setTimeout(async () => {
      await api(config.readUrl, { method: "POST" });
      onListChanged();
    }, 1000);
  }

  function stopMarkingRead() {
    markedUnread = true;
    clearTimeout(readTimer);
  }

  older.addEventListener("click", loadOlder);
  older.hidden = !hasOlder;
  new IntersectionObserver(
    (entries) => {
      if (entries.some((e) => e.isIntersecting)) loadOlder();
    },
    { root: scroller },
  ).observe(older);
  document.addEventListener("visibilitychange", markReadSoon);
  window.addEventListener("hashchange", revealHash);

  add(config.messages);
  empty.hidden = config.messages.length > 0;
  toBottom();
  revealHash();
  // The page was drawn with this chat read; this records it (a GET changes nothing).
  if (document.visibilityState === "visible") api(config.readUrl, { method: "POST" });
  return {
    list,
    empty,
    add,
    catchUp,
    markReadSoon,
    stopMarkingRead,
    toBottom,
    reveal,
    change,
    settle,
    settleLater,
    setUi,
    ui: (id) => ui.get(id) || {},
    view,
    has: (id) => known.has(id),
    lastBody: (id) => bodies.get(id) || "",
    node: (id) => nodes.get(id),
  };
}
