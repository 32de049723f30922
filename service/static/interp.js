// Interpolation in z between two seeds or z vectors. An image model: a strip (PNG) and an animation (GIF).
// A toy model: the path of G(z) in data space (plots.js), from the points of /interpolate?format=json.

import { getImage, query, request } from "./api.js";
import * as plots from "./plots.js";

const $ = (id) => document.getElementById(id);

// params: {model, version, z0, z1, steps, method}; toy: as in samples.load (null for an image model).
export async function show(params, toy) {
  if (toy) await showPath(params, toy);
  else await showImages(params);
  const how = params.method === "slerp" ? "spherical" : "linear";
  const path = toy ? ": G(z) from A (z0) to B (z1)" : "";
  $("interp-caption").textContent = `${how} interpolation in ${params.steps} steps, ${params.model} ` +
                                    `v${params.version}${path}`;
  $("interp-out").hidden = false;
}

async function showImages(params) {
  const [strip, anim] = await Promise.all([
    getImage(`/interpolate?${query({ ...params, format: "png" })}`),
    getImage(`/interpolate?${query({ ...params, format: "gif" })}`),
  ]);
  for (const img of [$("interp-strip"), $("interp-anim")]) {
    if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  }
  $("interp-strip").src = strip.url;
  $("interp-anim").src = anim.url;
  showOnly(["interp-strip", "interp-anim"]);
}

async function showPath(params, toy) {
  const { data } = await request(`/interpolate?${query({ ...params, format: "json" })}`);
  const label = `Path of G(z) in ${data.points.length} steps of ${params.model} v${params.version}, from A ` +
                `(z0) to B (z1)`;
  if (toy.dim === 1) plots.path1d($("interp-plot"), data.points.map((p) => p[0]), data.t, toy.definition, label);
  else plots.path2d($("interp-plot"), data.points, toy.definition, label);
  showOnly(["interp-path"]);
}

function showOnly(ids) {
  for (const id of ["interp-strip", "interp-anim", "interp-path"]) $(id).hidden = !ids.includes(id);
}
