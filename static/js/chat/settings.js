// The thread header's actions: mark as unread, and under "Chat settings" rename (group chats),
// members (add and remove), hide and leave, each in a <dialog>.

import { CHATS_PAGE, api, button, config, confirmAction, el, gettext, interpolate, persist, refusal, say } from "./api.js";
import { renameInTitle } from "./title.js";

function nameOf(person) {
  return person.name || person.email || gettext("Someone");
}

export function setUpSettings(thread, members) {
  const heading = document.getElementById("thread-h");
  const membersLine = document.getElementById("thread-members");
  const toggle = document.getElementById("chat-settings-button");
  const menu = document.getElementById("chat-settings-menu");
  let renaming = false;

  // the menu (a disclosure of buttons) ---------------------------------------------------
  function openMenu(open) {
    menu.hidden = !open;
    toggle.setAttribute("aria-expanded", String(open));
  }
  toggle.disabled = false;
  toggle.addEventListener("click", () => {
    openMenu(menu.hidden);
    if (!menu.hidden) menu.querySelector("button")?.focus();
  });
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      openMenu(false);
      toggle.focus();
    }
  });
  menu.addEventListener("click", (event) => {
    if (event.target.closest("button")) openMenu(false);
  });
  // Tabbing out of it closes it, so that it hides nothing the focus moves to.
  menu.addEventListener("focusout", (event) => {
    if (event.relatedTarget && !menu.contains(event.relatedTarget) && event.relatedTarget !== toggle) openMenu(false);
  });
  document.addEventListener("click", (event) => {
    if (!menu.hidden && !menu.contains(event.target) && !toggle.contains(event.target)) openMenu(false);
  });

  // mark as unread ----------------------------------------------------------------------
  const unread = document.getElementById("mark-unread");
  unread.disabled = false;
  unread.addEventListener("click", async () => {
    unread.disabled = true;
    thread.stopMarkingRead();
    const result = await persist(config.unreadUrl, { method: "POST" });
    if (result.ok) {
      location.assign(CHATS_PAGE);
      return;
    }
    unread.disabled = false;
    say(refusal(gettext("The chat was not marked as unread"), result));
  });

  // rename ------------------------------------------------------------------------------
  function setTitle(title) {
    renameInTitle(heading.textContent, title);
    heading.textContent = title;
    const entry = document.querySelector(`#chat-list li[data-chat="${config.chat}"] .chat-title`);
    if (entry) entry.textContent = title;
  }

  const renameDialog = document.getElementById("rename-dialog");
  if (renameDialog) {
    const input = document.getElementById("rename-input");
    const error = document.getElementById("rename-error");
    document.getElementById("rename-button").addEventListener("click", () => {
      input.value = config.topic || heading.textContent;
      error.textContent = "";
      renameDialog.showModal();
      input.select();
    });
    document.getElementById("rename-cancel").addEventListener("click", () => renameDialog.close());
    renameDialog.addEventListener("close", () => toggle.focus());
    document.getElementById("rename-form").addEventListener("submit", async (event) => {
      event.preventDefault();
      const topic = input.value.trim();
      if (!topic) {
        error.textContent = gettext("Give the chat a name.");
        return;
      }
      if (topic.length > 250) {
        error.textContent = gettext("A chat name can have at most 250 characters.");
        return;
      }
      renameDialog.close();
      toggle.focus();
      const before = heading.textContent;
      renaming = true;
      setTitle(topic);
      const result = await persist(config.chatApiUrl, { method: "PATCH", body: { topic } });
      renaming = false;
      if (result.ok) {
        config.topic = topic;
        setTitle(result.data.chat.title);
        say(gettext("Chat renamed."), { fade: true });
      } else {
        setTitle(before);
        say(refusal(gettext("The chat was not renamed"), result));
      }
    });
  }

  // members -----------------------------------------------------------------------------
  const membersDialog = document.getElementById("members-dialog");
  const memberList = document.getElementById("members-list");
  const membersError = document.getElementById("members-error");
  const adding = new Map(); // oid -> person being added
  const removing = new Set(); // oids being removed

  function drawMembers() {
    const list = members.current() || [];
    memberList.replaceChildren();
    [...list, ...[...adding.values()].filter((p) => !list.some((m) => m.id === p.id))].forEach((person) => {
      const li = el("li", "member");
      li.append(el("span", "member-name", person.me ? interpolate(gettext("%(name)s (you)"), { name: nameOf(person) }, true) : nameOf(person)));
      if (person.email && person.email !== person.name) li.append(" ", el("span", "muted", person.email));
      if (adding.has(person.id) && !list.some((m) => m.id === person.id)) {
        li.classList.add("working");
        li.append(" ", el("span", "action-state", gettext("Adding…")));
      } else if (removing.has(person.id)) {
        li.classList.add("working");
        li.append(" ", el("span", "action-state", gettext("Removing…")));
      } else if (config.isGroup && !person.me) {
        const remove = button(gettext("Remove"), "link", { "aria-label": interpolate(gettext("Remove %(name)s"), { name: nameOf(person) }, true) });
        remove.addEventListener("click", () => removeMember(person));
        li.append(" ", remove);
      }
      memberList.append(li);
    });
  }

  members.onChange((list) => {
    membersLine.textContent = list.map(nameOf).join(", ");
    if (membersDialog.open) drawMembers();
  });

  async function removeMember(person) {
    membersError.textContent = "";
    removing.add(person.id);
    drawMembers();
    const result = await persist(`${config.membersUrl}${encodeURIComponent(person.id)}/`, { method: "DELETE" });
    removing.delete(person.id);
    if (result.ok) {
      members.set(result.data.members);
      memberList.closest("dialog").querySelector("input, button")?.focus();
    } else {
      drawMembers();
      membersError.textContent = refusal(interpolate(gettext("%(name)s was not removed"), { name: nameOf(person) }, true), result);
    }
  }

  async function addMember(person) {
    membersError.textContent = "";
    adding.set(person.id, person);
    drawMembers();
    findPeople();
    const result = await persist(config.membersUrl, { method: "POST", body: { id: person.id } });
    adding.delete(person.id);
    if (result.ok) members.set(result.data.members);
    else membersError.textContent = refusal(interpolate(gettext("%(name)s was not added"), { name: nameOf(person) }, true), result);
    drawMembers();
    findPeople();
  }

  const search = document.getElementById("add-member-search");
  const results = document.getElementById("add-member-results");
  let searchTimer = null;
  let searches = 0;

  async function findPeople() {
    if (!search) return;
    const q = search.value.trim();
    searches += 1;
    const mine = searches;
    if (!q) {
      results.replaceChildren();
      return;
    }
    const { ok, data } = await api(`${config.peopleUrl}?${new URLSearchParams({ q })}`);
    if (mine !== searches) return; // a later search answers
    results.replaceChildren();
    if (!ok) {
      results.append(el("li", "empty", data.message || gettext("People could not be loaded.")));
      return;
    }
    const inChat = new Set([...(members.current() || []).map((m) => m.id), ...adding.keys()]);
    const people = data.people.filter((p) => !inChat.has(p.id));
    if (!people.length) results.append(el("li", "empty", gettext("Nobody else found.")));
    people.forEach((person) => {
      const li = el("li");
      li.append(el("span", "member-name", nameOf(person)));
      if (person.email) li.append(" ", el("span", "muted", person.email));
      const add = button(gettext("Add"), "link", { "aria-label": interpolate(gettext("Add %(name)s"), { name: nameOf(person) }, true) });
      add.addEventListener("click", () => addMember(person));
      li.append(" ", add);
      results.append(li);
    });
  }

  if (search) {
    search.addEventListener("input", () => {
      clearTimeout(searchTimer);
      searchTimer = setTimeout(findPeople, 250);
    });
  }

  document.getElementById("members-button").addEventListener("click", async () => {
    membersError.textContent = "";
    drawMembers();
    membersDialog.showModal();
    const answer = await members.load();
    if (!Array.isArray(answer)) membersError.textContent = answer.error;
    drawMembers();
  });
  document.getElementById("members-close").addEventListener("click", () => membersDialog.close());
  membersDialog.addEventListener("close", () => toggle.focus());

  // hide and leave ----------------------------------------------------------------------
  document.getElementById("hide-button").addEventListener("click", async () => {
    const yes = await confirmAction({
      title: gettext("Hide this chat?"),
      text: gettext("It leaves your chat list until someone writes in it again. You stay a member."),
      yes: gettext("Hide"),
      returnTo: toggle,
    });
    if (!yes) return;
    const result = await persist(config.hideUrl, { method: "POST", body: { hidden: true } });
    if (result.ok) location.assign(CHATS_PAGE);
    else say(refusal(gettext("The chat was not hidden"), result));
  });

  const leave = document.getElementById("leave-button");
  if (leave) {
    leave.addEventListener("click", async () => {
      const yes = await confirmAction({
        title: gettext("Leave this chat?"),
        text: gettext("You will no longer get its messages, here or in Teams. Someone in it can add you again."),
        yes: gettext("Leave"),
        returnTo: toggle,
      });
      if (!yes) return;
      say(gettext("Leaving the chat…"));
      const result = await persist(`${config.membersUrl}${encodeURIComponent(config.me)}/`, { method: "DELETE" });
      if (result.ok) location.assign(result.data.url || CHATS_PAGE);
      else say(refusal(gettext("You did not leave the chat"), result));
    });
  }

  // Another tab (or Teams) renamed the chat: the list, refreshed, has its new name.
  return {
    listRefreshed(listNav) {
      const entry = listNav.querySelector(`li[data-chat="${config.chat}"] .chat-title`);
      if (entry && !renaming && entry.textContent !== heading.textContent) {
        renameInTitle(heading.textContent, entry.textContent);
        heading.textContent = entry.textContent;
      }
    },
    chatChanged() {
      if (members.current()) members.load();
    },
    // A system event arrived in the thread (someone added, removed, left): the members line too.
    membersChanged() {
      members.load();
    },
  };
}
