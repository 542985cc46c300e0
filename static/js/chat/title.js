// The tab's title: the chat's name (which a rename changes) and, while the tab is hidden, how
// many new messages came in.

let base = document.title;
let unseen = 0;

function draw() {
  document.title = unseen ? `(${unseen}) ${base}` : base;
}

export function renameInTitle(before, after) {
  if (before && base.startsWith(`${before} · `)) base = after + base.slice(before.length);
  draw();
}

export function setUnseen(count) {
  unseen = count;
  draw();
}
