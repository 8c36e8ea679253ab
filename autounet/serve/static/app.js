// autounet web page: pick a model, upload an image, watch the job, browse the result slice by slice, download it.
// Plain JavaScript, no build step, no external resources. Talks to the same server's /v1 API.
"use strict";

const COLORS = [[0, 0, 0], [230, 57, 70], [42, 157, 143], [244, 162, 97], [69, 123, 157], [233, 196, 106],
  [155, 93, 229], [0, 187, 249], [241, 91, 181], [254, 228, 64], [0, 245, 212], [131, 56, 236]];
const POLL_MS = 500;
const $ = (id) => document.getElementById(id);
const page = { key: sessionStorage.getItem("autounet-key") || "", models: [], job: null, volume: null };

function setState(state, text) {
  document.body.dataset.state = state;
  $("status").textContent = text || "";
}

function showError(message) {
  $("error").textContent = message;
  $("error").hidden = !message;
  if (message) setState("error", "");
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (page.key) headers["Authorization"] = "Bearer " + page.key;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { const body = await response.json(); message = body.error ? body.error.message : message; } catch (e) { /* not JSON */ }
    const error = new Error(message);
    error.status = response.status;
    throw error;
  }
  return response;
}

async function start() {
  try {
    const config = await (await fetch("/ui/config")).json();
    $("server-version").textContent = "server " + config.version + ", uploads up to " + config.max_upload_mb + " MB";
    if (config.api_key_required) $("key-row").hidden = false;
    $("api-key").value = page.key;
  } catch (e) { /* the models call below reports the problem */ }
  await loadModels();
}

async function loadModels() {
  showError("");
  try {
    const body = await (await api("/v1/models")).json();
    page.models = body.models;
  } catch (e) {
    if (e.status === 401) { $("key-row").hidden = false; setState("need-key", "enter the API key"); return; }
    showError("cannot list the models: " + e.message);
    return;
  }
  const select = $("model");
  select.innerHTML = "";
  for (const model of page.models) {
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = model.name + (model.ready ? "" : " (warming up)");
    select.appendChild(option);
  }
  select.disabled = page.models.length === 0;
  $("run").disabled = page.models.length === 0;
  describeModel();
  setState("ready", page.models.length ? "" : "this server has no models");
}

function describeModel() {
  const model = page.models.find((m) => m.name === $("model").value);
  if (!model) { $("model-info").textContent = ""; return; }
  const labels = Object.entries(model.labels).filter(([, v]) => v !== 0).map(([k]) => k).join(", ");
  const cv = model.cross_validation && model.cross_validation.mean_dice != null
    ? ", cross-validation Dice " + model.cross_validation.mean_dice.toFixed(3) : "";
  $("model-info").textContent = model.dimensionality + " model, channels: " + model.channels.join(", ") +
    "; labels: " + labels + cv + (model.description ? " — " + model.description : "");
  $("formats").textContent = "Accepted: " + model.accepted_formats.join(" ");
}

async function run() {
  const files = $("file").files;
  if (!files.length) { showError("choose an image file first"); return; }
  showError("");
  $("result").hidden = true;
  $("run").disabled = true;
  const form = new FormData();
  for (const file of files) form.append("file", file, file.name);
  form.append("mirroring", $("mirroring").checked ? "true" : "false");
  form.append("step_size", $("step-size").value);
  form.append("preview", "true");
  setState("uploading", "uploading…");
  $("progress").hidden = false;
  $("progress").value = 0;
  try {
    const job = await (await api("/v1/models/" + encodeURIComponent($("model").value) + "/jobs",
      { method: "POST", body: form })).json();
    page.job = await waitFor(job.id);
    await showResult(page.job);
  } catch (e) {
    showError(e.message);
  } finally {
    $("run").disabled = false;
    $("progress").hidden = true;
  }
}

async function waitFor(id) {
  for (;;) {
    const job = await (await api("/v1/jobs/" + id)).json();
    $("progress").value = job.progress;
    setState("running", job.state + (job.state === "running" ? " (" + job.step + ")" : ""));
    if (job.state === "done") return job;
    if (job.state === "failed") throw new Error(job.error ? job.error.message : "the job failed");
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

async function showResult(job) {
  const meta = await (await api(job.result.preview)).json();
  const [image, labels] = await Promise.all([meta.image_url, meta.labels_url].map(
    async (url) => new Uint8Array(await (await api(url)).arrayBuffer())));
  page.volume = { meta, image, labels };
  const axis = $("axis");
  axis.disabled = meta.is_2d;
  axis.value = "0";
  $("legend").innerHTML = "";
  for (const label of meta.labels) {
    if (label.index === 0) continue;
    const item = document.createElement("li");
    const color = COLORS[label.index % COLORS.length];
    item.innerHTML = '<span class="swatch"></span><span class="name"></span><span class="muted small"></span>';
    item.querySelector(".swatch").style.background = "rgb(" + color.join(",") + ")";
    item.querySelector(".name").textContent = label.name + " (" + label.value + ")";
    item.querySelector(".small").textContent = label.voxels + " voxels" + (meta.stride.some((s) => s > 1) ? " (preview grid)" : "");
    $("legend").appendChild(item);
  }
  const timings = job.result.timings;
  $("timings").textContent = "seconds: " + Object.entries(timings).map(([k, v]) => k + " " + v.toFixed(2)).join(", ");
  $("download-name").textContent = job.result.filename;
  $("result").hidden = false;
  resetSlider();
  setState("done", "done");
}

function resetSlider() {
  const { meta } = page.volume;
  const axis = Number($("axis").value);
  const slider = $("slider");
  slider.max = String(meta.shape[axis] - 1);
  slider.value = String(Math.floor(meta.shape[axis] / 2));
  draw();
}

// The slice at `index` along `axis` as rows x cols with the spacing of each, from a (z, y, x) C-order volume.
function sliceGeometry(meta, axis) {
  const [z, y, x] = meta.shape;
  const [sz, sy, sx] = meta.spacing;
  if (axis === 0) return { rows: y, cols: x, rowSpacing: sy, colSpacing: sx, at: (i, r, c) => (i * y + r) * x + c };
  if (axis === 1) return { rows: z, cols: x, rowSpacing: sz, colSpacing: sx, at: (i, r, c) => (r * y + i) * x + c };
  return { rows: z, cols: y, rowSpacing: sz, colSpacing: sy, at: (i, r, c) => (r * y + c) * x + i };
}

function draw() {
  const { meta, image, labels } = page.volume;
  const axis = Number($("axis").value);
  const index = Number($("slider").value);
  const g = sliceGeometry(meta, axis);
  const alpha = Number($("opacity").value) / 100;
  const buffer = new ImageData(g.cols, g.rows);
  let overlaid = 0;
  for (let r = 0; r < g.rows; r++) {
    for (let c = 0; c < g.cols; c++) {
      const v = g.at(index, r, c);
      const grey = image[v];
      const label = labels[v];
      const o = 4 * (r * g.cols + c);
      let rgb = [grey, grey, grey];
      if (label > 0 && alpha > 0) {
        const color = COLORS[label % COLORS.length];
        rgb = rgb.map((value, k) => Math.round((1 - alpha) * value + alpha * color[k]));
        overlaid++;
      }
      buffer.data[o] = rgb[0]; buffer.data[o + 1] = rgb[1]; buffer.data[o + 2] = rgb[2]; buffer.data[o + 3] = 255;
    }
  }
  const canvas = $("slice");
  canvas.width = g.cols;
  canvas.height = g.rows;
  canvas.getContext("2d").putImageData(buffer, 0, 0);
  // Physical aspect ratio: scale so the longer side is about 512 screen pixels.
  const widthMm = g.cols * g.colSpacing, heightMm = g.rows * g.rowSpacing;
  const scale = 512 / Math.max(widthMm, heightMm);
  canvas.style.width = Math.round(widthMm * scale) + "px";
  canvas.style.height = Math.round(heightMm * scale) + "px";
  $("slice-number").textContent = (index + 1) + " / " + (Number($("slider").max) + 1);
  canvas.dataset.slice = String(index);
  canvas.dataset.overlaid = String(overlaid);
}

async function download() {
  if (!page.job) return;
  try {
    const response = await api(page.job.result.url);
    const blob = await response.blob();
    const bytes = new Uint8Array(await blob.arrayBuffer());
    const digest = crypto.subtle ? Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)))
      .map((b) => b.toString(16).padStart(2, "0")).join("") : "";
    window.autounetDownload = { name: page.job.result.filename, size: bytes.length, sha256: digest };
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = page.job.result.filename;
    document.body.appendChild(link);
    link.click();
    setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
  } catch (e) {
    showError("download failed: " + e.message);
  }
}

$("key-apply").addEventListener("click", () => {
  page.key = $("api-key").value.trim();
  sessionStorage.setItem("autounet-key", page.key);
  loadModels();
});
$("model").addEventListener("change", describeModel);
$("run").addEventListener("click", run);
$("axis").addEventListener("change", resetSlider);
$("slider").addEventListener("input", draw);
$("opacity").addEventListener("input", draw);
$("download").addEventListener("click", download);
start();
