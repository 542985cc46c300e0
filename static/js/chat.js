// The chat page: the list, search, a thread (older messages on scroll; react, reply with a quote,
// edit, delete and undo), the composer (@mentions, images, sends that wait out a busy Teams),
// the chat's settings, "New chat", the sync's progress, notifications, and live updates over a
// websocket. Message HTML and search snippets come sanitized from the server; everything else
// is inserted as text.

import { config } from "./chat/api.js";
import { setUpActions } from "./chat/actions.js";
import { setUpComposer } from "./chat/composer.js";
import { setUpList } from "./chat/list.js";
import { connectLive } from "./chat/live.js";
import { setUpMembers } from "./chat/members.js";
import { setUpNewChat } from "./chat/newchat.js";
import { setUpAlerts } from "./chat/notify.js";
import { setUpSearch } from "./chat/search.js";
import { setUpSettings } from "./chat/settings.js";
import { setUpSync } from "./chat/sync.js";
import { setUpThread } from "./chat/thread.js";

// What the server does not offer (config without its URL) is left out of the page.
const NEEDS = {
  "chat-search": "searchUrl",
  "mark-unread": "unreadUrl",
  "rename-button": "chatApiUrl",
  "members-button": "membersUrl",
  "leave-button": "membersUrl",
  "hide-button": "hideUrl",
};
Object.entries(NEEDS).forEach(([id, key]) => {
  const node = document.getElementById(id);
  if (node && !config[key]) (node.closest("li") || node).hidden = true;
});

const list = setUpList();
const sync = setUpSync(list);
setUpSearch();
setUpNewChat();
const alerts = setUpAlerts();
let thread = null;
let settings = null;
if (config.chat) {
  const members = setUpMembers();
  thread = setUpThread({ onListChanged: list.refreshSoon });
  setUpActions(thread, setUpComposer(thread, members));
  settings = setUpSettings(thread, members);
  list.onRefresh((nav) => settings.listRefreshed(nav));
}
connectLive({ sync, list, thread, alerts, settings });

