// The chat list (server-rendered, swapped in when chats change) with "Show more chats".

import { api, config, localDate, localTime } from "./api.js";

export function setUpList() {
  const listNav = document.getElementById("chat-list");
  const listeners = [];
  let listTimer = null;

  function localTimes(root) {
    // The server writes UTC; people read their own time (today: the hour; before: the day).
    const today = new Date().toDateString();
    root.querySelectorAll("time.chat-time").forEach((node) => {
      const at = new Date(node.dateTime);
      node.textContent =
at.toDateString() === today ? localTime(at) : localDate(at);
    });
  }

  async function refresh() {
    // The open thread, when visible, is drawn read (its POST to readUrl records it).
    const seen = config.chat && document.visibilityState === "visible" ? "1" : "";
    const params = new URLSearchParams({ current: config.chat || "", seen });
    const { ok, data } = await api(`${config.listUrl}?${params}`);
    if (ok) {
      listNav.innerHTML = data.html;
      localTimes(listNav);
      listeners.forEach((listener) => listener(listNav));
    }
  }

  function refreshSoon() {
    clearTimeout(listTimer);
    listTimer = setTimeout(refresh, 300);
  }

  localTimes(listNav);

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

  return { refresh, refreshSoon, onRefresh: (listener) => listeners.push(listener) };
}
