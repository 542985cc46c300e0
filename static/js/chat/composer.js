// The composer: sending (sending, sent, failed with retry; a throttled send waits and goes
// again with everything kept), a reply's quote chip, @mentions picked from the chat's members,
// and images pasted or chosen, previewed before they go.

import { AUTO_RETRIES, NOT_SENT_YET, api, button, config, el, gettext, interpolate, newId } from "./api.js";
import { quoteBlock } from "./message.js";
import { setUpImages } from "./images.js";
import { setUpMentions } from "./mentions.js";

export function setUpComposer(thread, members) {
  const form = document.getElementById("composer");
  const box = document.getElementById("composer-text");
  const error = document.getElementById("composer-error");
  const chip = document.getElementById("reply-chip");
  const describedBy = box.getAttribute("aria-describedby");
  const images = setUpImages({ box, error });
  const mentions = setUpMentions({ box, members });
  let replying = null;

  function replyTo(message) {
    replying = { id: message.id, sender: message.mine ? gettext("You") : message.sender || gettext("Someone") };
    replying.preview = (message.html ? new DOMParser().parseFromString(message.html, "text/html").body.textContent : "")
      .replace(/\s+/g, " ")
      .trim()
      .slice(0, 140);
    document.getElementById("reply-sender").textContent = replying.sender;
    document.getElementById("reply-preview").textContent = replying.preview;
    chip.hidden = false;
    box.setAttribute("aria-describedby", `reply-chip ${describedBy}`);
    box.focus();
  }

  function cancelReply({ focus = false } = {}) {
    replying = null;
    chip.hidden = true;
    box.setAttribute("aria-describedby", describedBy);
    if (focus) box.focus();
  }

  document.getElementById("reply-cancel").addEventListener("click", () => cancelReply({ focus: true }));

  function pendingNode(body, pictures) {
    const li = el("li", "message mine pending");
    const head = el("p", "message-head");
    head.append(el("span", "sender", gettext("You")), " ", el("span", "send-state", gettext("Sending…")));
    li.append(head);
    if (body.reply) li.append(quoteBlock(body.reply, { go: false }));
    if (body.content) li.append(el("p", "message-body plain", body.content));
    if (pictures.length) {
      const row = el("p", "message-body pending-images");
      pictures.forEach((picture, index) => {
        const img = el("img");
        img.src = picture.url;
        img.alt = interpolate(gettext("Image %(number)s"), { number: index + 1 }, true);
        row.append(img);
      });
      li.append(row);
    }
    const actions = el("p", "send-actions");
    const retry = button(gettext("Retry"), "link");
    retry.hidden = true;
    const discard = button(gettext("Discard"), "link");
    discard.hidden = true;
    actions.append(retry, " ", discard);
    li.append(actions);
    retry.addEventListener("click", () => send(li, body, 0));
    discard.addEventListener("click", () => {
      pictures.forEach((picture) => URL.revokeObjectURL(picture.url));
      li.remove();
    });
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

  async function send(li, body, attempt) {
    setState(li, "sending", gettext("Sending…"));
    const { reply, ...payload } = body;
    const { ok, data, retryAfter } = await api(config.messagesUrl, { method: "POST", body: payload });
    if (ok) {
      li.querySelectorAll("img").forEach((img) => URL.revokeObjectURL(img.src));
      li.remove();
      thread.add([data.message]);
      thread.toBottom();
      return;
    }
    if (NOT_SENT_YET.has(data.error) && attempt < AUTO_RETRIES) {
      let wait = Math.max(1, Math.round(retryAfter || 2 ** attempt));
      const tick = () => setState(li, "waiting", interpolate(gettext("Teams is busy; sending again in %(wait)s s…"), { wait }, true));
      tick();
      const timer = setInterval(() => {
        wait -= 1;
        if (wait > 0) {
          tick();
          return;
        }
        clearInterval(timer);
        send(li, body, attempt + 1);
      }, 1000);
      return;
    }
    const why = data.message || gettext("something went wrong");
    setState(li, "failed", interpolate(gettext("Not sent: %(why)s"), { why }, true));
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = box.value;
    const pictures = images.chosen();
    if (!text.trim() && !pictures.length) {
      error.textContent = gettext("Type a message first.");
      box.focus();
      return;
    }
    if (text.length > config.maxChars) {
      error.textContent = interpolate(
        gettext("A message can have at most %(max)s characters; this one has %(count)s."),
        { max: config.maxChars, count: text.length },
        true,
      );
      box.focus();
      return;
    }
    error.textContent = "";
    // One id for every try of this message: a try after one that reached Teams posts nothing new.
    const body = { content: text, client_id: newId() };
    if (replying) {
      body.reply_to = replying.id;
      body.reply = replying;
    }
    const picked = mentions.inText(text);
    if (picked.length) body.mentions = picked;
    // The draft leaves the composer before the images are read: a second Enter sends nothing twice.
    const encoding = pictures.length ? images.encoded() : null;
    box.value = "";
    images.clear({ keepPreviews: true });
    mentions.clear();
    cancelReply();
    const li = pendingNode(body, pictures);
    thread.list.append(li);
    thread.empty.hidden = true;
    thread.toBottom();
    if (encoding) body.images = await encoding;
    send(li, body, 0);
  });

  box.addEventListener("keydown", (event) => {
    if (event.defaultPrevented) return; // the mention picker took it
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    } else if (event.key === "Escape" && replying) {
      event.preventDefault();
      cancelReply();
    }
  });

  return { replyTo };
}
