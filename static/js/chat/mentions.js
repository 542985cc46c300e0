// @mentions in the composer: typing "@" lists the chat's members (filtered as one types) in a
// listbox the textarea controls (aria-activedescendant); ArrowUp/Down move, Enter or Tab picks,
// Escape closes. The pick is written "@Name" and sent in `mentions` while the text still has it.

import { el } from "./api.js";

const LONGEST_QUERY = 40;
const SHOWN = 8;

function matches(person, query) {
  const q = query.toLowerCase();
  if (!q) return true;
  const name = (person.name || "").toLowerCase();
  return name.startsWith(q) || name.split(/\s+/).some((word) => word.startsWith(q)) || (person.email || "").toLowerCase().startsWith(q);
}

export function setUpMentions({ box, members }) {
  const listbox = document.getElementById("mention-list");
  const picked = new Map(); // oid -> {id, name}
  let options = [];
  let active = 0;
  let start = -1; // where the "@" is
  let asked = 0;

  function close() {
    listbox.hidden = true;
    listbox.replaceChildren();
    box.removeAttribute("aria-activedescendant");
    options = [];
    start = -1;
  }

  function highlight(index) {
    active = (index + options.length) % options.length;
    listbox.querySelectorAll("[role=option]").forEach((node, i) => {
      node.setAttribute("aria-selected", String(i === active));
      if (i === active) {
        box.setAttribute("aria-activedescendant", node.id);
        node.scrollIntoView({ block: "nearest" });
      }
    });
  }

  function show(people) {
    options = people;
    listbox.replaceChildren();
    people.forEach((person, index) => {
      const option = el("li", "mention-option");
      option.id = `mention-option-${index}`;
      option.setAttribute("role", "option");
      option.append(el("span", "mention-name", person.name));
      if (person.email) option.append(" ", el("span", "muted", person.email));
      // Chosen with the pointer without taking focus from the textarea.
      option.addEventListener("mousedown", (event) => event.preventDefault());
      option.addEventListener("click", () => pick(person));
      listbox.append(option);
    });
    listbox.hidden = false;
    highlight(0);
  }

  // The "@…" being typed just before the caret, or null.
  function typing() {
    const before = box.value.slice(0, box.selectionStart);
    const at = before.lastIndexOf("@");
    if (at < 0 || (at > 0 && !/\s/.test(before[at - 1]))) return null;
    const query = before.slice(at + 1);
    if (query.length > LONGEST_QUERY || query.includes("\n") || query.startsWith(" ")) return null;
    return { at, query };
  }

  async function update() {
    const current = typing();
    if (!current) {
      close();
      return;
    }
    asked += 1;
    const mine = asked;
    const people = await members.list();
    if (mine !== asked) return; // typed on meanwhile
    const found = people.filter((p) => !p.me && matches(p, current.query)).slice(0, SHOWN);
    if (!found.length) {
      close();
      return;
    }
    start = current.at;
    show(found);
  }

  function pick(person) {
    const end = box.selectionStart;
    const text = `@${person.name} `;
    box.value = box.value.slice(0, start) + text + box.value.slice(end);
    const caret = start + text.length;
    box.setSelectionRange(caret, caret);
    picked.set(person.id, { id: person.id, name: person.name });
    close();
    box.focus();
  }

  box.setAttribute("aria-autocomplete", "list");
  box.setAttribute("aria-controls", "mention-list");
  box.addEventListener("input", update);
  box.addEventListener("click", update);
  box.addEventListener("blur", () => setTimeout(() => document.activeElement !== box && close(), 150));
  box.addEventListener("keydown", (event) => {
    if (listbox.hidden || !options.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      highlight(active + (event.key === "ArrowDown" ? 1 : -1));
    } else if ((event.key === "Enter" || event.key === "Tab") && !event.shiftKey) {
      event.preventDefault();
      pick(options[active]);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });
  close();

  return {
    inText: (text) => [...picked.values()].filter((m) => text.includes(`@${m.name}`)),
    clear() {
      picked.clear();
      close();
    },
  };
}
