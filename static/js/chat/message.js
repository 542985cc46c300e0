// One message of the thread as the page draws it: head (sender, time, "Edited"), the quoted
// message it replies to, the body (server-sanitized HTML), files, reaction chips, and the
// actions (react, reply, edit, delete; undo on a deleted message of one's own).

import { button, config, el, gettext, interpolate, ngettext, when } from "./api.js";

export const REACTION_NAMES = {
  "👍": gettext("Like"),
  "❤️": gettext("Heart"),
  "😆": gettext("Laugh"),
  "😮": gettext("Surprised"),
  "😢": gettext("Sad"),
  "😡": gettext("Angry"),
};
export const REACTIONS = config.reactions || Object.keys(REACTION_NAMES);

export function reactionName(type) {
  return REACTION_NAMES[type] || type;
}

function keyed(node, key) {
  node.dataset.key = key;
  return node;
}

export function senderOf(message) {
  return message.mine ? gettext("You") : message.sender || gettext("Someone");
}

export function canEdit(message) {
  if ("can_edit" in message) return message.can_edit;
  return message.mine && !message.deleted && !message.event;
}

export function quoteBlock(reply, { go = true } = {}) {
  const quote = el("blockquote", "quote");
  const sender = el("span", "quote-sender", reply.sender || gettext("Someone"));
  const preview = el("span", "quote-preview", reply.preview || "");
  if (!go) {
    quote.append(sender, preview);
    return quote;
  }
  const link = keyed(button("", "quote-link", { "data-action": "quote", "data-target": reply.id }), "quote");
  const from = reply.sender || gettext("someone");
  link.setAttribute("aria-label", interpolate(gettext("Go to the message from %(sender)s: %(preview)s"), { sender: from, preview: reply.preview || "" }, true));
  // The space keeps the visible words apart in the name that contains them (WCAG 2.5.3).
  link.append(sender, " ", preview);
  quote.append(link);
  return quote;
}

function reactionChips(message) {
  const list = el("ul", "reactions");
  list.setAttribute("aria-label", gettext("Reactions"));
  message.reactions.forEach((reaction) => {
    const names = (reaction.names || []).join(", ");
    const who = names || interpolate(ngettext("%(count)s person", "%(count)s people", reaction.count), { count: reaction.count }, true);
    const chip = button("", "reaction", {
      "data-action": "toggle-reaction",
      "data-reaction": reaction.type,
      "aria-pressed": String(Boolean(reaction.mine)),
      title: `${reactionName(reaction.type)}: ${who}`,
      "aria-label": `${reactionName(reaction.type)} ${reaction.type}, ${reaction.count}: ${who}`,
    });
    chip.append(el("span", "reaction-emoji", reaction.type), el("span", "reaction-count", String(reaction.count)));
    keyed(chip, `reaction ${reaction.type}`);
    const li = el("li");
    li.append(chip);
    list.append(li);
  });
  return list;
}

export function reactionPicker(message) {
  const picker = el("div", "reaction-picker");
  picker.setAttribute("role", "group");
  picker.setAttribute("aria-label", gettext("Choose a reaction"));
  picker.id = `picker-${message.id}`;
  const mine = new Set((message.reactions || []).filter((r) => r.mine).map((r) => r.type));
  REACTIONS.forEach((type) => {
    const choice = button(type, "reaction-choice", {
      "data-action": "pick-reaction",
      "data-reaction": type,
      "aria-pressed": String(mine.has(type)),
      "aria-label": reactionName(type),
      title: reactionName(type),
    });
    picker.append(keyed(choice, `pick ${type}`));
  });
  return picker;
}

function actions(message, { pickerOpen }) {
  const group = el("div", "message-actions");
  group.setAttribute("role", "group");
  const about = { sender: senderOf(message), time: when(message.created) };
  group.setAttribute("aria-label", interpolate(gettext("Actions on the message from %(sender)s, %(time)s"), about, true));
  const react = button(gettext("React"), "", { "data-action": "react", "aria-expanded": String(Boolean(pickerOpen)) });
  react.setAttribute("aria-controls", `picker-${message.id}`);
  group.append(keyed(react, "react"), keyed(button(gettext("Reply"), "", { "data-action": "reply" }), "reply"));
  if (canEdit(message)) {
    group.append(
      keyed(button(gettext("Edit"), "", { "data-action": "edit" }), "edit"),
      keyed(button(gettext("Delete"), "", { "data-action": "delete" }), "delete"),
    );
  }
  return group;
}

// state: {busy: words of an action under way, editor: the inline editor's form, pickerOpen}
export function renderMessage(message, state = {}) {
  const li = el("li", "message");
  li.id = `m-${message.id}`;
  li.tabIndex = -1;
  li.dataset.id = message.id;
  li.dataset.created = message.created;
  li.dataset.modified = message.modified;
  li.classList.toggle("mine", message.mine);
  li.classList.toggle("deleted", message.deleted);
  li.classList.toggle("system", Boolean(message.event));
  li.classList.toggle("mentions-me", Boolean(message.mentions_me) && !message.deleted);
  li.classList.toggle("working", Boolean(state.busy));
  if (message.event) {
    li.append(el("p", "event", message.event));
    return li;
  }
  const head = el("p", "message-head");
  head.append(el("span", "sender", senderOf(message)), " ");
  const time = el("time", "message-time", when(message.created));
  time.dateTime = message.created;
  head.append(time);
  if (message.edited && !message.deleted) head.append(" ", el("span", "edited", gettext("Edited")));
  if (message.mentions_me && !message.deleted) head.append(" ", el("span", "mention-badge", gettext("Mentions you")));
  if (state.busy) head.append(" ", el("span", "action-state", state.busy));
  li.append(head);
  if (message.deleted) {
    const body = el("p", "message-body", gettext("This message was deleted."));
    if (message.can_restore) {
      body.append(" ", keyed(button(gettext("Undo"), "link", { "data-action": "restore" }), "restore"));
    }
    li.append(body);
    return li;
  }
  if (message.reply_to) li.append(quoteBlock(message.reply_to));
  if (state.editor) {
    li.append(state.editor);
  } else {
    const body = el("div", "message-body");
    body.innerHTML = message.html; // sanitized by the server
    li.append(body);
  }
  if (message.files && message.files.length) {
    const files = el("ul", "files");
    files.setAttribute("aria-label", gettext("Files"));
    message.files.forEach((file) => {
      const link = el("a", "file", file.name || gettext("File"));
      link.href = file.url;
      link.rel = "noopener noreferrer";
      link.target = "_blank";
      const item = el("li");
      item.append(link);
      files.append(item);
    });
    li.append(files);
  }
  if (message.reactions && message.reactions.length) li.append(reactionChips(message));
  li.append(actions(message, state));
  if (state.pickerOpen) li.append(reactionPicker(message));
  return li;
}
