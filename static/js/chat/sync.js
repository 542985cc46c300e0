// The sync's progress in the sidebar, and "Sync now".

import { api, config } from "./api.js";

const STOPPED = {
  consent_revoked: "Sync stopped: your organization's consent was revoked. An administrator must grant it again.",
  sign_in_again: "Sync stopped: your Microsoft sign-in has expired. Sign out and sign in again to keep your chats up to date.",
  tenant_not_active: "Sync stopped: your organization is not connected any more.",
  forbidden: "Sync stopped: Teams refused to list your chats.",
};

export function setUpSync(list) {
  const syncBox = document.getElementById("sync-status");
  const syncText = document.getElementById("sync-text");
  const syncBar = document.getElementById("sync-progress");

  function show(sync) {
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
    if (before === "running" && sync.status !== "running") list.refreshSoon();
  }

  function answer({ ok, data }) {
    if (ok) show({ ...data.sync, status: data.queued ? "running" : data.sync.status });
  }

  document.getElementById("sync-now").addEventListener("click", async () => {
    answer(await api(config.syncUrl, { method: "POST" }));
  });

  show(config.sync);
  // Opening the chats asks for a sync when none ran lately (a GET changes nothing: this POST does).
  if (config.syncStale) api(config.syncUrl, { method: "POST" }).then(answer);

  return {
    show,
    reload: () => api(config.syncUrl).then(({ ok, data }) => ok && show(data.sync)),
    box: syncBox,
  };
}
