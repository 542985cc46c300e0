// What every part of the chat page shares: its config, JSON calls to the portal (with waits and
// retries when Teams is busy), the page's one status line and small DOM helpers.

export const config = JSON.parse(document.getElementById("chat-config").textContent);
// Django's JavaScript catalog (base.html loads it before the page's modules): the page's language.
export const { gettext, ngettext, interpolate } = window;
// Dates and times in the page's language too.
const LOCALE = document.documentElement.lang || undefined;
const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
export const AUTO_RETRIES = 5;
// Answers after which the action certainly did not happen yet: the page tries again by itself.
// ("graph_unavailable" is not one: Teams may have done it, so the person decides.)
export const NOT_SENT_YET = new Set(["graph_throttled", "busy", "in_progress", "entra_unavailable"]);

export function newId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export async function api(url, { method = "GET", body } = {}) {
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
    return { ok: false, status: 0, data: { message: gettext("The portal could not be reached. Check your connection.") } };
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

export function isBusy(result) {
  return result.status === 429 || NOT_SENT_YET.has(result.data.error);
}

export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

// An action Teams may answer "busy" to: waits as long as asked and goes again, a few times,
// counting down on the status line. Only for actions that are the same when done twice.
export async function persist(url, options, tries = AUTO_RETRIES) {
  for (let attempt = 0; ; attempt += 1) {
    const result = await api(url, options);
    if (result.ok || !isBusy(result) || attempt >= tries) {
      if (attempt) say("");
      return result;
    }
    for (let wait = Math.max(1, Math.round(result.retryAfter || 2 ** attempt)); wait > 0; wait -= 1) {
      say(interpolate(gettext("Teams is busy; trying again in %(wait)s s…"), { wait }, true));
      await sleep(1000);
    }
    say(gettext("Trying again…"));
  }
}

// The page's status line (one polite live region for what actions did or could not do).
const statusLine = document.getElementById("page-status");
let statusTimer = null;

export function say(text, { fade = false } = {}) {
  clearTimeout(statusTimer);
  statusLine.textContent = text;
  if (fade && text) statusTimer = setTimeout(() => (statusLine.textContent = ""), 6000);
}

export function refusal(what, result) {
  const why = result.data.message || gettext("something went wrong. Try again.");
  return interpolate(gettext("%(what)s: %(why)s"), { what, why }, true);
}

export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

export function button(text, className, attributes = {}) {
  const node = el("button", className, text);
  node.type = "button";
  Object.entries(attributes).forEach(([name, value]) => node.setAttribute(name, value));
  return node;
}

export function when(iso) {
  return new Date(iso).toLocaleString(LOCALE, { dateStyle: "medium", timeStyle: "short" });
}

export function localDate(at) {
  return at.toLocaleDateString(LOCALE, { dateStyle: "medium" });
}

export function localTime(at) {
  return at.toLocaleTimeString(LOCALE, { timeStyle: "short" });
}

export function messageUrl(id, tail = "") {
  return config.messageUrl.replace("__id__", encodeURIComponent(id)) + tail;
}

// The chats page without a chat open (where leaving, hiding or marking unread goes).
export const CHATS_PAGE = config.chatUrl.replace(/0\/$/, "");

// A message's HTML as the text someone would type to write it again.
export function htmlToText(html) {
  const holder = document.createElement("template");
  holder.innerHTML = html;
  // What the text of a message holds: mentions as typed ("@Name"); images and notes are kept by
  // the server apart from the text.
  holder.content.querySelectorAll("span.mention").forEach((m) => m.prepend("@"));
  holder.content.querySelectorAll("span.note, img").forEach((node) => node.remove());
  holder.content.querySelectorAll("br").forEach((br) => br.replaceWith("\n"));
  holder.content.querySelectorAll("p, div, li").forEach((block) => block.append("\n"));
  return holder.content.textContent.replace(/\n{3,}/g, "\n\n").trim();
}

export function textToHtml(text) {
  const p = document.createElement("p");
  p.textContent = text.trim();
  return p.outerHTML.replace(/\r?\n/g, "<br>");
}

// A modal confirmation (<dialog>): resolves true when the person confirms.
// When it closes, the focus goes back to `returnTo`: by default the control that had it; a caller
// whose control is gone by then (an item of a closed menu) names another.
export function confirmAction({ title, text, yes, returnTo = document.activeElement }) {
  const dialog = document.getElementById("confirm-dialog");
  const opener = returnTo;
  document.getElementById("confirm-h").textContent = title;
  document.getElementById("confirm-text").textContent = text;
  document.getElementById("confirm-yes").textContent = yes;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener(
      "close",
      () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === "yes");
      },
      { once: true },
    );
  });
}
