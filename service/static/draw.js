// The drawing pad: a 280x280 canvas (white strokes on black, like MNIST) -> POST /encode (the model's encoder
// E finds z; the server converts the image to the model's 28x28 as uploads are) -> the input as the model
// sees it and G(E(x)) beside the pad. The z goes to the interpolation's A or B. An uploaded image is the
// other way in. Shown only for a version whose GET /models entry has an encoder, so /encode never answers 409.

import { describe, postForm } from "./api.js";

const $ = (id) => document.getElementById(id);
const STROKE = 22;  // canvas pixels: about 2.2 of the model's 28, like MNIST's pen

let current = null;   // () => {model, version, labelled}
let onEncoded = null; // ({z, label, slot}) => void
let drawing = false;
let dirty = false;

export function init(callbacks) {
  current = callbacks.current;
  onEncoded = callbacks.onEncoded;
  const pad = $("pad");
  clear();
  pad.addEventListener("pointerdown", (event) => {
    drawing = true;
    pad.setPointerCapture(event.pointerId);
    stroke(event, true);
  });
  pad.addEventListener("pointermove", (event) => { if (drawing) stroke(event, false); });
  for (const end of ["pointerup", "pointercancel"]) pad.addEventListener(end, () => { drawing = false; });
  $("draw-clear").addEventListener("click", clear);
  $("draw-form").addEventListener("submit", (event) => {
    event.preventDefault();
    if (!dirty) {
      $("draw-status").textContent = "Draw something first (or upload an image).";
      return;
    }
    pad.toBlob((blob) => encode(blob, "drawing.png"), "image/png");
  });
  $("draw-file").addEventListener("change", () => {
    const file = $("draw-file").files[0];
    if (file) encode(file, file.name);
  });
}

// Show the panel for a version with an encoder, and its class picker for a conditional one.
export function show(info) {
  $("draw-panel").hidden = !(info && info.encoder);
}

export function clear() {
  const ctx = $("pad").getContext("2d");
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, $("pad").width, $("pad").height);
  dirty = false;
}

function stroke(event, start) {
  const pad = $("pad");
  const box = pad.getBoundingClientRect();
  const x = (event.clientX - box.left) * (pad.width / box.width);
  const y = (event.clientY - box.top) * (pad.height / box.height);
  const ctx = pad.getContext("2d");
  Object.assign(ctx, { strokeStyle: "#fff", fillStyle: "#fff", lineWidth: STROKE, lineCap: "round",
                       lineJoin: "round" });
  if (start) {
    ctx.beginPath();
    ctx.arc(x, y, STROKE / 2, 0, 2 * Math.PI);
    ctx.fill();
    ctx.beginPath();
    ctx.moveTo(x, y);
  } else {
    ctx.lineTo(x, y);
    ctx.stroke();
  }
  dirty = true;
}

async function encode(blob, name) {
  const { model, version, labelled } = current();
  if (!model) return;
  const form = new FormData();
  form.append("image", blob, name);
  const label = labelled ? $("draw-label").value : "";
  const slot = $("draw-slot").value;
  $("draw-status").textContent = "Encoding…";
  try {
    const params = new URLSearchParams({ model, version, ...(label ? { label } : {}) });
    const body = await postForm(`/encode?${params}`, form);
    $("draw-input").src = body.image;
    $("draw-recon").src = body.reconstruction;
    $("draw-out").hidden = false;
    $("draw-status").textContent = `Encoded into ${slot}${label ? ` as class ${label}` : ""}.`;
    if (slot === "A") $("draw-slot").value = "B";
    onEncoded({ z: body.z, label, slot });
  } catch (error) {
    $("draw-status").textContent = `Could not encode: ${describe(error)}`;
  }
}
