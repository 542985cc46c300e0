// Searching one's messages across chats (GET config.searchUrl?q=&page=): results with the chat,
// the sender, the time and a snippet (server-escaped HTML with <mark>), "More results"; a
// result is a link to its chat, which goes to the message.

import { api, config, el, gettext, interpolate, when } from "./api.js";

export function setUpSearch() {
  const form = document.getElementById("chat-search");
  const input = document.getElementById("chat-search-q");
  const error = document.getElementById("chat-search-error");
  const section = document.getElementById("search-results");
  const heading = document.getElementById("search-results-h");
  const results = document.getElementById("search-list");
  const more = document.getElementById("search-more");
  let query = "";
  let page = 1;
  let asked = 0;

  function result(hit) {
    const li = el("li", "search-hit");
    const link = el("a");
    link.href = hit.url;
    const head = el("span", "hit-head");
    head.append(el("span", "hit-title", hit.chat_title));
    const time = el("time", "hit-time", when(hit.created));
    time.dateTime = hit.created;
    head.append(" ", time);
    const snippet = el("span", "hit-snippet");
    snippet.append(el("span", "hit-sender", interpolate(gettext("%(sender)s: "), { sender: hit.sender || gettext("Someone") }, true)));
    const words = el("span");
    words.innerHTML = hit.snippet; // escaped by the server, <mark> around the matches
    snippet.append(words);
    link.append(head, snippet);
    li.append(link);
    return li;
  }

  async function run(q, nextPage) {
    asked += 1;
    const mine = asked;
    more.disabled = true;
    const { ok, data } = await api(`${config.searchUrl}?${new URLSearchParams({ q, page: String(nextPage) })}`);
    if (mine !== asked) return;
    more.disabled = false;
    if (!ok) {
      error.textContent = data.message || gettext("The search did not work. Try again.");
      return;
    }
    error.textContent = "";
    query = q;
    page = nextPage;
    if (nextPage === 1) results.replaceChildren();
    data.results.forEach((hit) => results.append(result(hit)));
    heading.textContent = results.children.length
      ? interpolate(gettext("Messages with “%(query)s”"), { query: q }, true)
      : interpolate(gettext("No messages with “%(query)s”"), { query: q }, true);
    more.hidden = !data.more;
    section.hidden = false;
  }

  function close() {
    asked += 1;
    section.hidden = true;
    results.replaceChildren();
    error.textContent = "";
    query = "";
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    if (q.length < 2) {
      error.textContent = gettext("Type at least 2 characters to search.");
      return;
    }
    run(q, 1);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && !section.hidden) {
      event.preventDefault();
      close();
    }
  });
  input.addEventListener("search", () => {
    if (!input.value) close();
  });
  more.addEventListener("click", () => run(query, page + 1));
  document.getElementById("search-close").addEventListener("click", () => {
    close();
    input.value = "";
    input.focus();
  });
}
