// Images for the next message: pasted, dropped or chosen with the button; checked against the
// portal's limits here (how many, how large, which types) and previewed with a remove button.

import { button, config, el, gettext, interpolate, ngettext } from "./api.js";

const TYPES = new Set(["image/png", "image/jpeg", "image/gif"]);
const MAX_IMAGES = config.maxImages || 4;
const MAX_BYTES = config.maxImageBytes || 3 * 1024 * 1024;

function megabytes(bytes) {
  const mb = bytes / (1024 * 1024);
  const amount = mb >= 10 ? Math.round(mb) : Math.round(mb * 10) / 10;
  return interpolate(gettext("%(amount)s MB"), { amount: amount.toLocaleString(document.documentElement.lang || undefined) }, true);
}

function base64(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.addEventListener("load", () => resolve(String(reader.result).split(",", 2)[1]));
    reader.addEventListener("error", () => reject(reader.error));
    reader.readAsDataURL(file);
  });
}

export function setUpImages({ box, error }) {
  const input = document.getElementById("image-input");
  const previews = document.getElementById("image-previews");
  let pictures = []; // {file, url}

  function draw() {
    previews.replaceChildren();
    pictures.forEach((picture, index) => {
      const li = el("li");
      const img = el("img");
      img.src = picture.url;
      img.alt = picture.file.name
        ? interpolate(gettext("Image %(number)s to send: %(name)s"), { number: index + 1, name: picture.file.name }, true)
        : interpolate(gettext("Image %(number)s to send"), { number: index + 1 }, true);
      const remove = button("×", "remove-image", { "aria-label": interpolate(gettext("Remove image %(number)s"), { number: index + 1 }, true) });
      remove.addEventListener("click", () => {
        URL.revokeObjectURL(picture.url);
        pictures = pictures.filter((p) => p !== picture);
        draw();
        (previews.querySelector("button") || box).focus();
      });
      li.append(img, remove);
      previews.append(li);
    });
    previews.hidden = !pictures.length;
  }

  function add(files) {
    const problems = [];
    for (const file of files) {
      const named = file.name && file.name !== "image.png";
      const name = file.name;
      const size = megabytes(file.size);
      const max = megabytes(MAX_BYTES);
      if (!TYPES.has(file.type)) {
        problems.push(
          named
            ? interpolate(gettext("“%(name)s” cannot be sent: only PNG, JPEG and GIF images can."), { name }, true)
            : gettext("This image cannot be sent: only PNG, JPEG and GIF images can."),
        );
      } else if (file.size > MAX_BYTES) {
        problems.push(
          named
            ? interpolate(gettext("“%(name)s” is %(size)s; an image can be at most %(max)s."), { name, size, max }, true)
            : interpolate(gettext("This image is %(size)s; an image can be at most %(max)s."), { size, max }, true),
        );
      } else if (pictures.length >= MAX_IMAGES) {
        const most = ngettext("A message can have at most %(count)s image.", "A message can have at most %(count)s images.", MAX_IMAGES);
        problems.push(interpolate(most, { count: MAX_IMAGES }, true));
        break;
      } else {
        pictures.push({ file, url: URL.createObjectURL(file) });
      }
    }
    error.textContent = problems.join(" ");
    draw();
  }

  box.addEventListener("paste", (event) => {
    const files = [...(event.clipboardData?.files || [])].filter((f) => f.type.startsWith("image/"));
    if (!files.length) return;
    if (!event.clipboardData.types.includes("text/plain")) event.preventDefault();
    add(files);
  });
  box.addEventListener("dragover", (event) => {
    if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
  });
  box.addEventListener("drop", (event) => {
    const files = [...(event.dataTransfer?.files || [])];
    if (!files.length) return;
    event.preventDefault();
    add(files);
  });
  const attach = document.getElementById("attach-image");
  attach.addEventListener("click", () => input.click());
  attach.disabled = false;
  input.addEventListener("change", () => {
    add([...input.files]);
    input.value = "";
    box.focus();
  });

  return {
    chosen: () => [...pictures],
    encoded: () => Promise.all(pictures.map(async (p) => ({ content_type: p.file.type, data: await base64(p.file) }))),
    clear({ keepPreviews = false } = {}) {
      if (!keepPreviews) pictures.forEach((p) => URL.revokeObjectURL(p.url));
      pictures = [];
      draw();
    },
  };
}
