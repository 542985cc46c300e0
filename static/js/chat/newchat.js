// "New chat": find people, tick them, optionally name a group chat, start it.

import { api, config, el, gettext } from "./api.js";

export function setUpNewChat() {
  const dialog = document.getElementById("new-chat");
  const form = document.getElementById("new-chat-form");
  const search = document.getElementById("people-search");
  const results = document.getElementById("people-results");
  const topic = document.getElementById("new-chat-topic");
  const error = document.getElementById("new-chat-error");
  const chosen = new Map();
  let timer = null;

  async function find() {
    const { ok, data } = await api(`${config.peopleUrl}?${new URLSearchParams({ q: search.value.trim() })}`);
    results.replaceChildren();
    if (!ok) {
      results.append(el("li", "empty", data.message || gettext("People could not be loaded.")));
      return;
    }
    const people = [...data.people];
    chosen.forEach((person, id) => {
      if (!people.some((p) => p.id === id)) people.unshift(person);
    });
    if (!people.length) {
      results.append(
        el("li", "empty", gettext("Nobody found. People appear once they have used the portal or share a chat with you.")),
      );
      return;
    }
    people.forEach((person) => {
      const li = el("li");
      const label = el("label");
      const box = el("input");
      box.type = "checkbox";
      box.value = person.id;
      box.checked = chosen.has(person.id);
      box.addEventListener("change", () => {
        if (box.checked) chosen.set(person.id, person);
        else chosen.delete(person.id);
      });
      label.append(box, " ", person.name);
      if (person.email) label.append(" ", el("span", "muted", person.email));
      li.append(label);
      results.append(li);
    });
  }

  const opener = document.getElementById("new-chat-button");
  opener.disabled = false;
  opener.addEventListener("click", () => {
    error.textContent = "";
    dialog.showModal();
    search.focus();
    find();
  });
  document.getElementById("new-chat-cancel").addEventListener("click", () => dialog.close());
  search.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(find, 250);
  });
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!chosen.size) {
      error.textContent = gettext("Choose at least one person.");
      return;
    }
    const start = document.getElementById("new-chat-start");
    start.disabled = true;
    error.textContent = "";
    const { ok, data } = await api(config.createUrl, {
      method: "POST",
      body: { members: [...chosen.keys()], topic: topic.value.trim() },
    });
    start.disabled = false;
    if (ok) location.assign(data.url);
    else error.textContent = data.message || gettext("The chat could not be created.");
  });
}
