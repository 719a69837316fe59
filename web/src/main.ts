/**
 * The page of `celeba-gan serve`: a lazy grid of faces for a seed, a detail view with the
 * command that makes the same face, interpolation between two picked faces, for a conditional
 * model a control per attribute (on / off / any), and a switch that makes the same faces in this
 * browser with onnxruntime-web (wasm) from /v1/model.onnx.
 *
 * The latents and the attribute rows come from the very modules the server uses
 * (src/inference/latents.ts and attributes.ts, compiled with the page), so a face here is the
 * same z and label row, and through the same model the same pixels.
 */
import type * as OrtWeb from 'onnxruntime-web';
import { attributeDraw, type ModelAttributes } from '../../src/inference/attributes.js';
import { MAX_FACE_INDEX, MAX_SEED, latentsFor, type LatentKind } from '../../src/inference/latents.js';

interface ModelInfo {
  preset: string;
  width: number;
  zDim: number;
  latent: LatentKind;
  image: { channels: number; height: number; width: number };
  step: number | null;
  model: string;
  modelSha256: string;
  provider: string;
  /** A conditional model's attributes (names in input order, frequencies, training rows); null otherwise. */
  attributes: ModelAttributes | null;
  limits: { maxSteps: number; maxPixels: number; encoderEffort: Record<'webp-animated', number> };
}

/** One attribute's control: the face has it, has it not, or it is drawn from the training data. */
type AttributeSetting = 'any' | 'on' | 'off';
const SETTINGS: readonly AttributeSetting[] = ['any', 'on', 'off'];

interface FaceRef {
  seed: number;
  index: number;
}

/** Faces added to the grid per page (and per "More faces"). */
const PAGE = 48;
/** Scale of the grid's and the download's images; the command shown says the same. */
const GRID_UPSCALE = 4;
const DETAIL_UPSCALE = 8;

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`page element #${id} is missing`);
  return el as T;
};

const state = {
  info: null as ModelInfo | null,
  seed: 7,
  truncation: undefined as string | undefined,
  /** The attribute request, canonical (the model's order, `-` for off): what attr= and --attr carry; '' asks for nothing. */
  attr: '',
  inBrowser: false,
  shown: 0,
  a: null as FaceRef | null,
  b: null as FaceRef | null,
  detail: null as FaceRef | null,
};

function setStatus(text: string): void {
  $('status').textContent = text;
}

async function fetchJson<T>(url: string): Promise<T> {
  const res = await fetch(url);
  const body = (await res.json()) as T & { error?: { code: string; message: string } };
  if (!res.ok) throw new Error(body.error ? `${body.error.code}: ${body.error.message}` : `HTTP ${res.status}`);
  return body;
}

/**
 * The options every image URL of the page shares: truncation and the attribute request (less
 * `walked`, the attribute an attribute walk moves, which attr= must leave to it).
 */
function optionsQuery(walked?: string): string {
  const t = state.truncation === undefined ? '' : `&truncation=${state.truncation}`;
  const attr = state.attr
    .split(',')
    .filter((item) => item !== '' && item.replace(/^-/, '') !== walked)
    .join(',');
  // Commas stay readable: attribute names are letters, digits, '_' and '-'.
  const a = attr === '' ? '' : `&attr=${encodeURIComponent(attr).replace(/%2C/g, ',')}`;
  return t + a;
}

function faceUrl(f: FaceRef, upscale: number): string {
  return `/v1/faces/${f.seed}/${f.index}.png?upscale=${upscale}${optionsQuery()}`;
}

function generateCommand(f: FaceRef): string {
  const t = state.truncation === undefined ? '' : ` --truncation ${state.truncation}`;
  // `--attr=` joins the value to the flag: a request starting with - (`-Smiling`) is not read as a flag.
  const a = state.attr === '' ? '' : ` --attr=${state.attr}`;
  return `celeba-gan generate --model models/${state.info!.model} --seed ${f.seed} --index ${f.index} --upscale ${GRID_UPSCALE}${t}${a}`;
}

// ---- in-browser generation (onnxruntime-web, wasm) ----

type Ort = typeof OrtWeb;
let browserModel: Promise<{ ort: Ort; session: OrtWeb.InferenceSession }> | null = null;

function openBrowserModel(): Promise<{ ort: Ort; session: OrtWeb.InferenceSession }> {
  browserModel ??= (async () => {
    // Served by celeba-gan serve from node_modules/onnxruntime-web/dist: no CDN, works offline.
    const url = '/ort/ort.wasm.min.mjs';
    const ort = (await import(url)) as Ort;
    ort.env.wasm.wasmPaths = '/ort/';
    // Threads need cross-origin isolation; one thread runs anywhere.
    ort.env.wasm.numThreads = 1;
    const session = await ort.InferenceSession.create('/v1/model.onnx', { executionProviders: ['wasm'] });
    return { ort, session };
  })();
  browserModel.catch(() => (browserModel = null));
  return browserModel;
}

/** Faces made here: uint8 RGBA per face (for a canvas), converted as the server converts. */
async function browserFaces(faces: FaceRef[]): Promise<ImageData[]> {
  const info = state.info!;
  const { ort, session } = await openBrowserModel();
  const { channels: c, height: h, width: w } = info.image;
  const z = new Float32Array(faces.length * info.zDim);
  const t = state.truncation === undefined ? undefined : Number(state.truncation);
  faces.forEach((f, i) => z.set(latentsFor(f.seed, f.index, 1, info.zDim, info.latent, t), i * info.zDim));
  const feeds: Record<string, OrtWeb.Tensor> = { z: new ort.Tensor('float32', z, [faces.length, info.zDim]) };
  const labels = labelRows(faces);
  if (labels) feeds.attributes = new ort.Tensor('float32', labels, [faces.length, labels.length / faces.length]);
  const result = await session.run(feeds);
  const plane = h * w;
  const output = result.images;
  // A model whose output is not [n, c, h, w] would otherwise read as NaN: black faces.
  if (output === undefined || output.data.length !== faces.length * c * plane) {
    throw new Error(
      `the model gave ${output === undefined ? 'no "images" output' : `${output.data.length} values`}; expected ${faces.length} x ${c} x ${h} x ${w}`,
    );
  }
  const images = output.data as Float32Array;
  return faces.map((_, i) => {
    const rgba = new Uint8ClampedArray(plane * 4);
    // `]!` in the pixel loop: i < n, ch < c and p < plane index the [n, c, h, w] output checked above.
    const level = (ch: number, p: number): number => Math.round((images[(i * c + ch) * plane + p]! + 1) * 127.5);
    for (let p = 0; p < plane; p++) {
      // As floatNchwToUint8Hwc (src/util/image.ts): round((v + 1) * 127.5), clamped by the array.
      for (let ch = 0; ch < 3; ch++) rgba[p * 4 + ch] = level(c === 1 ? 0 : ch, p);
      rgba[p * 4 + 3] = c === 4 ? level(3, p) : 255;
    }
    return new ImageData(rgba, w, h);
  });
}

/** A conditional model's label rows for these faces, drawn as the server draws them for attr=; undefined otherwise. */
function labelRows(faces: FaceRef[]): Float32Array | undefined {
  const info = state.info!;
  if (info.attributes === null) return undefined;
  const draw = attributeDraw(info.attributes, state.attr, info.model)!;
  const k = draw.attributeCount;
  const rows = new Float32Array(faces.length * k);
  faces.forEach((f, i) => rows.set(draw.rowsFor(f.seed, f.index, 1), i * k));
  return rows;
}

/** Canvases waiting to be drawn, drawn in batches as they scroll into view. */
const pending = new Map<HTMLCanvasElement, FaceRef>();
let drawing: Promise<void> | null = null;
const observer = new IntersectionObserver((entries) => {
  for (const e of entries) {
    if (!e.isIntersecting) continue;
    observer.unobserve(e.target);
    pending.set(e.target as HTMLCanvasElement, JSON.parse((e.target as HTMLElement).dataset.face!) as FaceRef);
  }
  void drawPending();
});

async function drawPending(): Promise<void> {
  if (drawing) return;
  drawing = (async () => {
    while (pending.size > 0) {
      const batch = [...pending].slice(0, 64);
      for (const [canvas] of batch) pending.delete(canvas);
      try {
        const images = await browserFaces(batch.map(([, f]) => f));
        for (const [i, [canvas]] of batch.entries()) {
          const image = images[i];
          if (image === undefined) throw new Error(`made ${images.length} faces for ${batch.length} canvases`);
          canvas.getContext('2d')!.putImageData(image, 0, 0);
          canvas.dataset.ready = 'true';
        }
        setStatus(`made ${document.querySelectorAll('canvas[data-ready]').length} faces in this browser (onnxruntime-web, wasm)`);
      } catch (err) {
        setStatus(`in-browser generation failed: ${(err as Error).message}`);
        break;
      }
    }
  })();
  await drawing;
  drawing = null;
}

// ---- grid and detail ----

function faceElement(f: FaceRef, upscale: number): HTMLElement {
  const info = state.info!;
  if (state.inBrowser) {
    const canvas = document.createElement('canvas');
    canvas.width = info.image.width;
    canvas.height = info.image.height;
    canvas.dataset.face = JSON.stringify(f);
    observer.observe(canvas);
    return canvas;
  }
  const img = document.createElement('img');
  img.loading = 'lazy';
  img.alt = `face ${f.seed}:${f.index}`;
  img.src = faceUrl(f, upscale);
  return img;
}

/** A seed as the server takes it: plain decimal digits, 0 .. MAX_SEED (the one range, src/inference/latents.ts). */
function parseSeed(text: string): number | null {
  if (!/^(0|[1-9][0-9]*)$/.test(text)) return null;
  const v = Number(text);
  return v <= MAX_SEED ? v : null;
}

function addFaces(wanted: number): void {
  const grid = $('grid');
  // The grid ends at the last face index any command makes.
  const count = Math.max(0, Math.min(wanted, MAX_FACE_INDEX - state.shown + 1));
  for (let k = 0; k < count; k++) {
    const f = { seed: state.seed, index: state.shown + k };
    const button = document.createElement('button');
    button.className = 'face';
    button.type = 'button';
    button.dataset.index = String(f.index);
    button.title = `seed ${f.seed}, index ${f.index}`;
    button.append(faceElement(f, GRID_UPSCALE));
    button.addEventListener('click', () => openDetail(f, button));
    grid.append(button);
  }
  state.shown += count;
}

function resetGrid(): void {
  $('grid').replaceChildren();
  pending.clear();
  state.shown = 0;
  addFaces(PAGE);
  if (!state.inBrowser) setStatus(`seed ${state.seed}: faces from the server`);
}

function openDetail(f: FaceRef, from: HTMLElement): void {
  state.detail = f;
  const holder = $('detail-image');
  const source = from.querySelector('canvas');
  if (source) {
    const copy = document.createElement('canvas');
    copy.width = source.width;
    copy.height = source.height;
    copy.getContext('2d')!.drawImage(source, 0, 0);
    holder.replaceChildren(copy);
  } else {
    holder.replaceChildren(faceElement(f, DETAIL_UPSCALE));
  }
  $('detail-seed').textContent = String(f.seed);
  $('detail-index').textContent = String(f.index);
  const link = $<HTMLAnchorElement>('detail-download');
  link.href = faceUrl(f, GRID_UPSCALE);
  link.download = `face-${f.seed}-${f.index}.png`;
  $('detail-command').textContent = generateCommand(f);
  $<HTMLDialogElement>('detail').showModal();
}

// ---- interpolation ----

function showPick(slot: 'a' | 'b'): void {
  const f = state[slot];
  const el = $(`pick-${slot}`);
  if (!f) return;
  const img = document.createElement('img');
  img.src = faceUrl(f, 2);
  img.alt = `${f.seed}:${f.index}`;
  el.replaceChildren(img);
  el.title = `${f.seed}:${f.index}`;
  updateWalkButton();
}

/** The attribute an attribute walk moves (conditional models), or '' for a walk from A to B. */
function walkedAttribute(): string {
  return $<HTMLSelectElement>('walk-attribute').value;
}

function updateWalkButton(): void {
  $<HTMLButtonElement>('walk-go').disabled = !(state.a && (state.b || walkedAttribute() !== ''));
}

function walk(): void {
  const { a, b } = state;
  const walked = walkedAttribute();
  if (!a || (!b && walked === '')) return;
  const { limits, image } = state.info!;
  // The server refuses a walk over its cost ceiling (--max-pixels): the animation below is WebP at upscale 4.
  const affordable = Math.floor(limits.maxPixels / (limits.encoderEffort['webp-animated'] * 16 * image.height * image.width));
  const steps = Math.max(2, Math.min(limits.maxSteps, affordable, Number($<HTMLInputElement>('steps').value) || 16));
  const target = walked === '' ? `to=${b!.seed}:${b!.index}` : `walk=${encodeURIComponent(walked)}`;
  const q = `from=${a.seed}:${a.index}&${target}&steps=${steps}${optionsQuery(walked)}`;
  const anim = $<HTMLImageElement>('walk-anim');
  anim.src = `/v1/interpolate?${q}&format=webp&upscale=4`;
  anim.alt = walked === '' ? `walk ${a.seed}:${a.index} to ${b!.seed}:${b!.index}` : `face ${a.seed}:${a.index} from -${walked} to ${walked}`;
  anim.hidden = false;
  // The scrubber shows one frame of the PNG strip at a time.
  const frame = $('walk-frame');
  const strip = new Image();
  strip.onload = () => {
    frame.style.backgroundImage = `url("${strip.src}")`;
    frame.style.backgroundSize = `${steps * 128}px 128px`;
    frame.dataset.ready = 'true';
    $('walk-scrub').hidden = false;
    scrub();
  };
  strip.src = `/v1/interpolate?${q}&format=png&upscale=2`;
  const slider = $<HTMLInputElement>('walk-slider');
  slider.max = String(steps - 1);
  slider.value = '0';
}

function scrub(): void {
  const k = Number($<HTMLInputElement>('walk-slider').value);
  $('walk-frame').style.backgroundPosition = `${-k * 128}px 0`;
}

// ---- attributes (conditional models) ----

/** A control per attribute, three radio buttons each; `changed` runs when one is set. */
function buildAttributeControls(model: ModelAttributes, initial: string, changed: () => void): void {
  const box = $('attributes');
  const asked = new Map(
    initial
      .split(',')
      .filter((item) => item !== '')
      .map((item) => (item.startsWith('-') ? [item.slice(1), 'off'] : [item, 'on'])),
  );
  model.names.forEach((name, i) => {
    const group = document.createElement('fieldset');
    group.className = 'attribute';
    const legend = document.createElement('legend');
    legend.textContent = name.replace(/_/g, ' ');
    const frequency = model.frequencies?.[i];
    if (frequency !== undefined) legend.title = `${name}: ${(100 * frequency).toFixed(1)}% of the training images`;
    group.append(legend);
    for (const setting of SETTINGS) {
      const label = document.createElement('label');
      const input = document.createElement('input');
      input.type = 'radio';
      input.name = `attr-${name}`;
      input.value = setting;
      input.dataset.attribute = name;
      input.checked = (asked.get(name) ?? 'any') === setting;
      input.addEventListener('change', changed);
      label.append(input, setting);
      group.append(label);
    }
    box.append(group);
  });
  const note = document.createElement('span');
  note.className = 'muted';
  note.textContent = 'any: drawn as it comes with the others in the training data';
  box.append(note);
  box.hidden = false;
  // An attribute walk: face A, with one attribute going from -1 to +1.
  const select = $<HTMLSelectElement>('walk-attribute');
  for (const name of model.names) select.append(new Option(`A, ${name.replace(/_/g, ' ')} off → on`, name));
  select.addEventListener('change', updateWalkButton);
  $('walk-attribute-box').hidden = false;
}

/** attr= of the page's hash (a shared link), or '' when it has none or it is not valid percent-encoding. */
function attrFromHash(): string {
  try {
    return decodeURIComponent(/attr=([^&]*)/.exec(location.hash)?.[1] ?? '');
  } catch {
    return '';
  }
}

/** The request the controls ask for, in the model's order (the server's canonical text). */
function attributeRequest(model: ModelAttributes): string {
  const items: string[] = [];
  for (const name of model.names) {
    const checked = document.querySelector<HTMLInputElement>(`input[name="attr-${CSS.escape(name)}"]:checked`);
    if (checked?.value === 'on') items.push(name);
    else if (checked?.value === 'off') items.push(`-${name}`);
  }
  return items.join(',');
}

// ---- controls ----

async function init(): Promise<void> {
  const info = await fetchJson<ModelInfo>('/v1/model');
  state.info = info;
  $('model-line').textContent =
    `${info.model}: ${info.preset} width ${info.width}${info.step === null ? '' : `, step ${info.step}`}, ${info.image.width}x${info.image.height}, on ${info.provider}`;
  const slider = $<HTMLInputElement>('truncation');
  slider.max = info.latent === 'uniform' ? '1' : '3';
  const seedInput = $<HTMLInputElement>('seed');
  const seedFromHash = parseSeed(/seed=([^&]*)/.exec(location.hash)?.[1] ?? '');
  if (seedFromHash !== null) seedInput.value = String(seedFromHash);
  state.seed = parseSeed(seedInput.value) ?? 7;
  const attributes = info.attributes;
  if (attributes !== null) {
    // #seed=7&attr=Smiling,-Male: a shared link opens on the same faces (names the model lacks are left at "any").
    buildAttributeControls(attributes, attrFromHash(), () => {
      state.attr = attributeRequest(attributes);
      resetGrid();
    });
    state.attr = attributeRequest(attributes);
  }

  seedInput.addEventListener('change', () => {
    const v = parseSeed(seedInput.value.trim());
    if (v === null) return setStatus(`seed must be a whole number from 0 to ${MAX_SEED}, in digits`);
    state.seed = v;
    resetGrid();
  });
  $('new-seed').addEventListener('click', () => {
    seedInput.value = String(Math.floor(Math.random() * (MAX_SEED + 1)));
    seedInput.dispatchEvent(new Event('change'));
  });
  const on = $<HTMLInputElement>('truncation-on');
  const updateTruncation = (): void => {
    slider.disabled = !on.checked;
    state.truncation = on.checked ? slider.value : undefined;
    $('truncation-value').textContent = state.truncation ?? 'off';
    resetGrid();
  };
  on.addEventListener('change', updateTruncation);
  slider.addEventListener('change', updateTruncation);
  slider.addEventListener('input', () => ($('truncation-value').textContent = slider.value));
  $<HTMLInputElement>('in-browser').addEventListener('change', (e) => {
    state.inBrowser = (e.target as HTMLInputElement).checked;
    if (state.inBrowser) setStatus('loading the model into this browser…');
    resetGrid();
  });
  $('more').addEventListener('click', () => addFaces(PAGE));
  $('use-a').addEventListener('click', () => {
    state.a = state.detail;
    showPick('a');
    $<HTMLDialogElement>('detail').close();
  });
  $('use-b').addEventListener('click', () => {
    state.b = state.detail;
    showPick('b');
    $<HTMLDialogElement>('detail').close();
  });
  $('walk-go').addEventListener('click', walk);
  $('walk-slider').addEventListener('input', scrub);
  resetGrid();
}

init().catch((err: Error) => setStatus(`cannot load the model: ${err.message}`));
