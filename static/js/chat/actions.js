// What one does to a message: react, reply, edit, delete and undo. Each shows at once, is
// confirmed by the server's answer (the message as it is now) or rolled back with its reason.

import { button, confirmAction, el, gettext, htmlToText, messageUrl, persist, refusal, say, textToHtml } from "./api.js";

// What an optimistic reaction of one's own is listed as, until the server names the reactors.
const YOU = gettext("You");
import { canEdit } from "./message.js";

function withReaction(message, type, on) {
  const reactions = (message.reactions || []).map((r) => ({ ...r, names: [...(r.names || [])] }));
  const index = reactions.findIndex((r) => r.type === type);
  const current = index >= 0 ? reactions[index] : null;
  if (Boolean(current && current.mine) === on) return message;
  if (on && current) {
    current.count += 1;
    current.mine = true;
    current.names.push(YOU);
  } else if (on) {
    reactions.push({ type, count: 1, mine: true, names: [YOU] });
  } else if (current.count <= 1) {
    reactions.splice(index, 1);
  } else {
    current.count -= 1;
    current.mine = false;
    const others = current.names.filter((name) => name !== YOU);
    // The server names people, not "You": which name is the viewer's is its to say.
    current.names = others.length < current.names.length ? others : current.names;
  }
  return { ...message, reactions };
}

export function setUpActions(thread, composer) {
  const list = thread.list;

  async function perform(id, { step, busy = "", url, method, body, failed }) {
    say("");
    const token = thread.change(id, step, busy);
    const result = await persist(url, { method, body });
    if (result.status === 202) thread.settleLater(id, token);
    else thread.settle(id, token, result.ok ? result.data.message : null);
    if (!result.ok) say(refusal(failed, result));
    return result.ok;
  }

  function react(id, type, on) {
    return perform(id, {
      step: (m) => withReaction(m, type, on),
      url: messageUrl(id, "reactions/"),
      method: "POST",
      body: { reaction: type, on },
      failed: on ? gettext("Your reaction was not added") : gettext("Your reaction was not removed"),
    });
  }

  function closePicker(id, { focus = false } = {}) {
    thread.setUi(id, { pickerOpen: false });
    if (focus) thread.node(id)?.querySelector("[data-action=react]")?.focus();
  }

  function editor(id) {
    const form = el("form", "edit-form");
    form.noValidate = true;
    const label = el("label", "visually-hidden", gettext("Edit message"));
    label.htmlFor = `edit-${id}`;
    const box = el("textarea");
    box.id = `edit-${id}`;
    box.rows = 2;
    box.value = htmlToText(thread.view(id).html);
    box.setAttribute("aria-describedby", `edit-help-${id}`);
    const help = el("p", "help", gettext("Enter saves; Escape cancels; Shift+Enter starts a new line."));
    help.id = `edit-help-${id}`;
    const actions = el("p", "edit-actions");
    actions.append(
      button(gettext("Save"), "primary small", { "data-action": "save-edit" }),
      " ",
      button(gettext("Cancel"), "", { "data-action": "cancel-edit" }),
    );
    actions.querySelector("[data-action=save-edit]").type = "submit";
    form.append(label, box, help, actions);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      save(id, box.value);
    });
    box.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        form.requestSubmit();
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        stopEditing(id);
      }
    });
    return form;
  }

  function startEditing(id) {
    const form = editor(id);
    thread.setUi(id, { editor: form, pickerOpen: false });
    const box = form.querySelector("textarea");
    box.focus();
    box.setSelectionRange(box.value.length, box.value.length);
  }

  function stopEditing(id) {
    thread.setUi(id, { editor: null });
    thread.node(id)?.querySelector("[data-action=edit]")?.focus();
  }

  async function save(id, text) {
    if (!text.trim()) {
      say(gettext("A message cannot be empty; delete it instead."), { fade: true });
      return;
    }
    if (text.trim() === htmlToText(thread.view(id).html)) {
      stopEditing(id);
      return;
    }
    stopEditing(id);
    await perform(id, {
      step: (m) => ({ ...m, html: textToHtml(text), edited: true }),
      busy: gettext("Saving…"),
      url: messageUrl(id),
      method: "PATCH",
      body: { content: text },
      failed: gettext("Your edit was not saved"),
    });
  }

  async function remove(id) {
    const yes = await confirmAction({
      title: gettext("Delete this message?"),
      text: gettext("It is deleted in Teams too. You can undo it afterwards."),
      yes: gettext("Delete"),
    });
    if (!yes) return;
    const done = await perform(id, {
      step: (m) => m,
      busy: gettext("Deleting…"),
      url: messageUrl(id),
      method: "DELETE",
      failed: gettext("The message was not deleted"),
    });
    if (done) {
      say(gettext("Message deleted."), { fade: true });
      thread.node(id)?.querySelector("[data-action=restore]")?.focus();
    }
  }

  async function restore(id) {
    const html = thread.lastBody(id);
    const done = await perform(id, {
      step: (m) => ({ ...m, deleted: false, html: m.html || html, can_restore: false }),
      busy: gettext("Restoring…"),
      url: messageUrl(id, "restore/"),
      method: "POST",
      failed: gettext("The message was not restored"),
    });
    if (done) thread.node(id)?.focus();
  }

  list.addEventListener("click", (event) => {
    const target = event.target.closest("button[data-action]");
    const li = target && target.closest("li.message[data-id]");
    if (!li || li.classList.contains("pending")) return;
    const id = li.dataset.id;
    const message = thread.view(id);
    switch (target.dataset.action) {
      case "react": {
        const open = !thread.ui(id).pickerOpen;
        thread.setUi(id, { pickerOpen: open });
        if (open) thread.node(id).querySelector(".reaction-choice")?.focus();
        break;
      }
      case "pick-reaction": {
        const type = target.dataset.reaction;
        const mine = (message.reactions || []).some((r) => r.type === type && r.mine);
        closePicker(id, { focus: true });
        react(id, type, !mine);
        break;
      }
      case "toggle-reaction":
        react(id, target.dataset.reaction, target.getAttribute("aria-pressed") !== "true");
        break;
      case "quote":
        thread.reveal(target.dataset.target);
        break;
      case "reply":
        composer.replyTo(message);
        break;
      case "edit":
        if (canEdit(message)) startEditing(id);
        break;
      case "cancel-edit":
        stopEditing(id);
        break;
      case "delete":
        remove(id);
        break;
      case "restore":
        restore(id);
        break;
      default:
    }
  });

  list.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    const li = event.target.closest("li.message[data-id]");
    if (li && thread.ui(li.dataset.id).pickerOpen) {
      event.preventDefault();
      closePicker(li.dataset.id, { focus: true });
    }
  });

  // A click elsewhere closes an open reaction picker.
  document.addEventListener("click", (event) => {
    // (The target may be gone already, redrawn: its message is found by id.)
    const inside = event.target.closest?.("li.message")?.dataset.id;
    list.querySelectorAll(".reaction-picker").forEach((picker) => {
      const id = picker.closest("li.message").dataset.id;
      if (id !== inside) closePicker(id);
    });
  });
}
