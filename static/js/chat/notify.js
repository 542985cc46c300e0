// While the tab is hidden: the count of new messages in its title and, for those who turned
// "Notify me" on (the browser asks for permission only then), a notification per message.

import { config, gettext, say } from "./api.js";
import { setUnseen } from "./title.js";

const KEY = "chat.notify";

function supported() {
  return "Notification" in window;
}

function wanted() {
  return supported() && localStorage.getItem(KEY) === "on" && Notification.permission === "granted";
}

export function setUpAlerts() {
  const toggle = document.getElementById("notify-toggle");
  let unseen = 0;

  function draw() {
    toggle.setAttribute("aria-pressed", String(wanted()));
  }

  toggle.addEventListener("click", async () => {
    if (wanted()) {
      localStorage.removeItem(KEY);
      say(gettext("Notifications off."), { fade: true });
    } else if (!supported()) {
      say(gettext("This browser cannot show notifications."), { fade: true });
    } else {
      const permission = await Notification.requestPermission();
      if (permission === "granted") {
        localStorage.setItem(KEY, "on");
        say(gettext("You will be notified of new messages while this tab is in the background."), { fade: true });
      } else {
        say(gettext("Your browser blocks notifications from this site; allow them in its site settings."), { fade: true });
      }
    }
    draw();
  });
  window.addEventListener("storage", (event) => event.key === KEY && draw());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") {
      unseen = 0;
      setUnseen(0);
    }
  });
  draw();
  toggle.disabled = false;

  const told = new Set();

  function tell(messages, chat, title) {
    const others = messages.filter((m) => !m.mine && !m.event && !m.deleted && !told.has(m.id));
    if (!others.length) return;
    others.forEach((m) => told.add(m.id));
    unseen += others.length;
    setUnseen(unseen);
    if (!wanted()) return;
    others.slice(-3).forEach((message) => {
      const text = new DOMParser().parseFromString(message.html, "text/html").body.textContent.trim();
      const notification = new Notification(`${message.sender || gettext("Someone")} · ${title}`, {
        body: text.slice(0, 200) || gettext("Sent an image"),
        tag: `chat-${chat}-${message.id}`,
      });
      notification.addEventListener("click", () => {
        window.focus();
        if (chat === config.chat) location.hash = `m-${message.id}`;
        else location.assign(`${config.chatUrl.replace(/0\/$/, `${chat}/`)}#m-${message.id}`);
        notification.close();
      });
    });
  }

  return {
    // New messages of the open chat, as they arrive live.
    arrived(messages) {
      if (document.visibilityState !== "hidden") return;
      tell(messages, config.chat, document.getElementById("thread-h")?.textContent || gettext("Teams chat"));
    },
    // Messages of the person's other chats: only new ones (an edit or a reaction is no news).
    elsewhere(chat, messages) {
      if (document.visibilityState !== "hidden") return;
      const recent = Date.now() - 5 * 60 * 1000;
      const fresh = messages.filter((m) => m.modified === m.created && Date.parse(m.created) > recent);
      const title = document.querySelector(`li.chat-entry[data-chat="${chat}"] .chat-title`)?.textContent;
      tell(fresh, chat, title || gettext("Teams chat"));
    },
  };
}
