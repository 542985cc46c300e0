// The sync's progress in the sidebar, and "Sync now".

import { api, config, gettext, interpolate, ngettext } from "./api.js";

const STOPPED = {
  consent_revoked: gettext("Sync stopped: your organization's consent was revoked. An administrator must grant it again."),
  sign_in_again: gettext(
    "Sync stopped: your Microsoft sign-in has expired. Sign out and sign in again to keep your chats up to date.",
  ),
  tenant_not_active: gettext("Sync stopped: your organization is not connected any more."),
  forbidden: gettext("Sync stopped: Teams refused to list your chats."),
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
      const counts = { done: sync.chats_done, total: sync.chats_total, messages: sync.messages };
      syncBar.textContent = interpolate(gettext("%(done)s of %(total)s"), counts, true);
      syncText.textContent = sync.chats_total
        ? interpolate(
            ngettext(
              "Syncing your Teams chats: %(done)s of %(total)s chats, %(messages)s message.",
              "Syncing your Teams chats: %(done)s of %(total)s chats, %(messages)s messages.",
              sync.messages,
            ),
            counts,
            true,
          )
        : gettext("Syncing your Teams chats…");
    } else if (sync.status === "idle") {
      syncText.textContent = gettext("Up to date.");
    } else if (sync.status === "retrying") {
      syncText.textContent = gettext("Teams asked us to slow down; the sync goes on shortly.");
    } else if (sync.status === "stopped") {
      syncText.textContent = STOPPED[sync.reason] || gettext("Sync stopped.");
    } else {
      syncText.textContent = gettext("Your Teams chats appear here after the first sync.");
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
