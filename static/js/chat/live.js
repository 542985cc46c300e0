// Live updates over a websocket that reconnects (backing off) and catches up on what it missed.

import { config, el, gettext } from "./api.js";

export function connectLive({ sync, list, thread, alerts, settings }) {
  const liveBox = el("p", "live-status");
  liveBox.setAttribute("role", "status");
  sync.box.after(liveBox);
  let attempts = 0;
  let everOpen = false;
  let pinger = null;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const path = config.chat ? `${config.socketPath}${config.chat}/` : config.socketPath;
    const socket = new WebSocket(`${scheme}://${location.host}${path}`);
    socket.addEventListener("open", async () => {
      liveBox.textContent = "";
      document.body.dataset.live = "open";
      attempts = 0;
      clearInterval(pinger);
      pinger = setInterval(() => socket.readyState === WebSocket.OPEN && socket.send('{"type":"ping"}'), 25000);
      if (everOpen) {
        list.refresh();
        sync.reload();
      }
      everOpen = true;
      // Whatever happened while the socket was not there (also before its first open).
      if (thread) alerts.arrived(await thread.catchUp());
    });
    socket.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "messages" && thread && data.chat === config.chat) {
        const fresh = thread.add(data.messages);
        alerts.arrived(fresh);
        if (settings && fresh.some((m) => m.event)) settings.membersChanged();
        // Only someone else's new message makes the chat unread (not edits, reactions, one's own).
        if (fresh.some((m) => !m.mine)) thread.markReadSoon();
      } else if (data.type === "messages") {
        alerts.elsewhere(data.chat, data.messages);
      } else if (data.type === "chat") {
        list.refreshSoon();
        if (settings && data.chat === config.chat) settings.chatChanged();
      } else if (data.type === "sync") {
        sync.show(data);
      }
    });
    socket.addEventListener("close", (event) => {
      document.body.dataset.live = "closed";
      clearInterval(pinger);
      if (event.code >= 4400 && event.code < 4500) {
        liveBox.textContent = gettext("Live updates stopped. Reload the page, or sign in again.");
        return;
      }
      const wait = Math.min(30, 2 ** attempts) * (0.5 + Math.random() / 2);
      attempts += 1;
      liveBox.textContent = gettext("Live updates interrupted; reconnecting…");
      setTimeout(connect, wait * 1000);
    });
  }

  connect();
}
