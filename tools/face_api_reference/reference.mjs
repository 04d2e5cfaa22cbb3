// Reference outputs of @vladmandic/face-api 1.7.15 (its own JavaScript, pure-JS tfjs CPU backend)
// on the package's demo photos, written as test fixtures for mbv1's PyTorch port.
//
//   cd tools/face_api_reference && npm ci --ignore-scripts && node reference.mjs
//
// Inputs come from mbv1's asset cache ($MBV1_CACHE or ~/.cache/mbv1, asset "face-api", fetched by
// `mbv1 weights pull`): <cache>/face-api/package/{model,demo}. Every photo is run twice: decoded by
// Pillow (libjpeg-turbo, what mbv1 itself uses; via $PYTHON, default <repo>/.venv/bin/python) and
// by the pure-JS jpeg-js. The two decoders differ (chroma upsampling) by ~0.5 grey level on
// average, which moves boxes by up to ~2 px and scores by ~1e-2. Outputs (see README.md):
//   tests/fixtures/face_api_reference.json
//   tests/fixtures/face_api/sample1_quarter.png        (exact SSD test input, lossless)
//   tests/fixtures/face_api/sample1_face0_crop.png     (exact crop face-api cut for face 0)
//   tests/fixtures/face_api/sample1_face0_input112.npy (exact 112x112x3 float32 attribute input)

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';

const require = createRequire(import.meta.url);
// The node-wasm bundle requires only the pure-JS @tensorflow/tfjs (+ tfjs-backend-wasm, unused):
// no native addon, nothing downloaded at install time. We select the 'cpu' backend below.
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const jpeg = require('jpeg-js');

const { tf } = faceapi;
const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const outDir = path.resolve(process.argv[2] || path.join(repo, 'tests', 'fixtures'));
const cache = process.env.MBV1_CACHE || path.join(os.homedir(), '.cache', 'mbv1');
const pkgRoot = path.join(cache, 'face-api', 'package');
const modelDir = path.join(pkgRoot, 'model');
const demoDir = path.join(pkgRoot, 'demo');

const SSD_OPTIONS = { minConfidence: 0.5, maxResults: 100 };
const EXPRESSIONS = ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgusted', 'surprised'];

function sha256(buf) { return createHash('sha256').update(buf).digest('hex'); }
function pkgVersion(name) {
  return JSON.parse(fs.readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;
}

// ---- tiny lossless writers (no dependencies) -------------------------------------------------
const CRC_TABLE = new Int32Array(256).map((_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = (c & 1) ? (0xEDB88320 ^ (c >>> 1)) : (c >>> 1);
  return c;
});
function crc32(buf) {
  let c = -1;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]) & 0xFF] ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
function pngChunk(type, data) {
  const len = Buffer.alloc(4); len.writeUInt32BE(data.length);
  const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4); crc.writeUInt32BE(crc32(td));
  return Buffer.concat([len, td, crc]);
}
function writePngRGB(file, rgb, width, height) { // rgb: Uint8Array HxWx3
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0); ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; ihdr[9] = 2; ihdr[10] = 0; ihdr[11] = 0; ihdr[12] = 0;
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) {
    raw[y * (width * 3 + 1)] = 0; // filter: none
    Buffer.from(rgb.buffer, rgb.byteOffset + y * width * 3, width * 3).copy(raw, y * (width * 3 + 1) + 1);
  }
  const png = Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]),
    pngChunk('IHDR', ihdr), pngChunk('IDAT', zlib.deflateSync(raw, { level: 9 })), pngChunk('IEND', Buffer.alloc(0)),
  ]);
  fs.writeFileSync(file, png);
  return sha256(png);
}
function writeNpyF32(file, f32, shape) {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const pre = Buffer.alloc(10);
  Buffer.from([0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59, 1, 0]).copy(pre);
  pre.writeUInt16LE(header.length, 8);
  const body = Buffer.from(f32.buffer, f32.byteOffset, f32.byteLength); // little-endian host
  const out = Buffer.concat([pre, Buffer.from(header, 'latin1'), body]);
  fs.writeFileSync(file, out);
  return sha256(out);
}

// ---- helpers ----------------------------------------------------------------------------------
function decodeJpeg(file) {
  const buf = fs.readFileSync(file);
  const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 2048 });
  return { ...img, fileSha256: sha256(buf) };
}
const PYTHON = process.env.PYTHON
  || (fs.existsSync(path.join(repo, '.venv', 'bin', 'python')) ? path.join(repo, '.venv', 'bin', 'python') : 'python3');
const PIL_DECODE = [
  'import sys; from PIL import Image',
  'im = Image.open(sys.argv[1]); rgb = im.convert("RGB")',
  'sys.stdout.buffer.write(b"%d %d\\n" % rgb.size + rgb.tobytes())',
].join('\n');
function pillowVersions() {
  const code = 'import PIL, PIL.features as f; print(PIL.__version__, f.version("jpg"), f.version("libjpeg_turbo"))';
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${PYTHON} cannot import Pillow (set $PYTHON): ${r.stderr || r.error}`);
  const [pillow, libjpeg, turbo] = r.stdout.trim().split(' ');
  return { pillow, libjpeg, libjpeg_turbo: turbo };
}
function decodePillow(file) {
  const r = spawnSync(PYTHON, ['-c', PIL_DECODE, file], { maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`Pillow failed on ${file}: ${r.stderr}`);
  const nl = r.stdout.indexOf(10);
  const [width, height] = r.stdout.subarray(0, nl).toString().split(' ').map(Number);
  const data = new Uint8Array(r.stdout.subarray(nl + 1));
  if (data.length !== width * height * 3) throw new Error(`Pillow output size mismatch for ${file}`);
  return { width, height, data };
}
const DECODERS = { pillow: decodePillow, 'jpeg-js': (file) => decodeJpeg(file) };

function meanOf(u8) { let s = 0; for (let i = 0; i < u8.length; i++) s += u8[i]; return s / u8.length; }
function boxJson(b) { return { x: b.x, y: b.y, width: b.width, height: b.height }; }

// Raw SSD outputs (boxes in the padded-square frame, normalized [ymin,xmin,ymax,xmax]; scores).
async function rawSsd(imgTensor) {
  const netInput = await faceapi.toNetInput(imgTensor);
  const { boxes, scores } = faceapi.nets.ssdMobilenetv1.forwardInput(netInput);
  const out = { boxes: boxes[0].arraySync(), scores: Array.from(scores[0].dataSync()) };
  boxes.forEach((t) => t.dispose()); scores.forEach((t) => t.dispose());
  return { ...out, reshaped: netInput.getReshapedInputDimensions(0) };
}

// Run everything face-api does for one decoded image (RGB Uint8Array).
async function analyse(rgb, width, height) {
  const img = tf.tensor3d(Int32Array.from(rgb), [height, width, 3], 'int32');
  const options = new faceapi.SsdMobilenetv1Options(SSD_OPTIONS);
  const results = await faceapi.detectAllFaces(img, options).withAgeAndGender().withFaceExpressions();
  const raw = await rawSsd(img);
  const candidates = raw.scores.filter((s) => s > SSD_OPTIONS.minConfidence).length;
  const faces = results.map((r) => {
    const det = r.detection;
    const idx = raw.scores.findIndex((s) => s === det.score);
    const crop = det.forSize(width, height).box.clipAtImageBorders(width, height);
    return {
      score: det.score,
      box: boxJson(det.box),
      relative_box: boxJson(det.relativeBox),
      anchor_index: idx,
      raw_box_yxyx: idx >= 0 ? raw.boxes[idx] : null,
      crop_box: boxJson(crop),
      age: r.age,
      gender: r.gender,
      genderProbability: r.genderProbability,
      expressions: Object.fromEntries(EXPRESSIONS.map((e) => [e, r.expressions[e]])),
    };
  });
  return {
    img,
    faces,
    results,
    ssd: {
      reshaped_dims: { width: raw.reshaped.width, height: raw.reshaped.height },
      candidates_above_min_confidence: candidates,
    },
  };
}

async function attributeOutputs(input) { // input: tf tensor (crop 3D or 112x112 4D)
  const ag = await faceapi.nets.ageGenderNet.forward(input);
  const age = Array.from(ag.age.dataSync());
  const gender = Array.from(ag.gender.dataSync());
  ag.age.dispose(); ag.gender.dispose();
  const ex = await faceapi.nets.faceExpressionNet.forward(input);
  const expressions = Array.from(ex.dataSync());
  ex.dispose();
  return { age: age[0], gender_softmax_male_female: gender, expressions_softmax: expressions };
}

async function main() {
  if (!fs.existsSync(path.join(modelDir, 'ssd_mobilenetv1_model-weights_manifest.json'))) {
    throw new Error(`face-api asset not found under ${pkgRoot}; run \`mbv1 weights pull\` first`);
  }
  const versionsPil = pillowVersions(); // fail early when Pillow is missing
  console.log('Pillow', versionsPil);
  await tf.setBackend('cpu');
  await tf.ready();
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  await faceapi.nets.ageGenderNet.loadFromDisk(modelDir);
  await faceapi.nets.faceExpressionNet.loadFromDisk(modelDir);

  fs.mkdirSync(path.join(outDir, 'face_api'), { recursive: true });
  const images = [];
  const total = {};
  let sample1 = null;
  for (let i = 1; i <= 6; i++) {
    const file = path.join(demoDir, `sample${i}.jpg`);
    const entry = { file: `package/demo/sample${i}.jpg`, file_sha256: sha256(fs.readFileSync(file)) };
    entry.decoders = {};
    for (const [decName, decode] of Object.entries(DECODERS)) {
      const dec = decode(file);
      const t0 = Date.now();
      const res = await analyse(dec.data, dec.width, dec.height);
      total[decName] = (total[decName] || 0) + res.faces.length;
      entry.width = dec.width;
      entry.height = dec.height;
      entry.decoders[decName] = {
        decoded_rgb_sha256: sha256(dec.data),
        decoded_rgb_mean: meanOf(dec.data),
        ssd: res.ssd,
        num_faces: res.faces.length,
        faces: res.faces,
      };
      console.log(`sample${i}.jpg ${dec.width}x${dec.height} [${decName}]: ${res.faces.length} faces (${Date.now() - t0} ms)`);
      if (i === 1 && decName === 'pillow') sample1 = { dec, res };
      else res.img.dispose();
    }
    images.push({ file: entry.file, file_sha256: entry.file_sha256, width: entry.width, height: entry.height, decoders: entry.decoders });
  }

  // ---- exact attribute-net input: the crop face-api cuts for face 0 of sample1.jpg -------------
  const { dec, res } = sample1;
  const det0 = res.results[0].detection;
  const [cropT] = await faceapi.extractFaceTensors(res.img, [det0]);
  const [ch, cw] = cropT.shape;
  const cropU8 = Uint8Array.from(cropT.dataSync());
  const cropPng = writePngRGB(path.join(outDir, 'face_api', 'sample1_face0_crop.png'), cropU8, cw, ch);
  const netInput = await faceapi.toNetInput(cropT);
  const in112 = netInput.toBatchTensor(112, true); // [1,112,112,3] float32, before mean/255
  const in112Data = in112.dataSync();
  const npySha = writeNpyF32(path.join(outDir, 'face_api', 'sample1_face0_input112.npy'), in112Data, [112, 112, 3]);
  const fromCrop = await attributeOutputs(cropT);
  const fromInput = await attributeOutputs(in112);
  const attribute = {
    description: 'attribute nets on one fixed input: face 0 of sample1.jpg (Pillow-decoded) as face-api crops it',
    image: 'package/demo/sample1.jpg',
    face_index: 0,
    crop_box: res.faces[0].crop_box,
    crop_png: 'face_api/sample1_face0_crop.png',
    crop_png_sha256: cropPng,
    crop_shape_hwc: [ch, cw, 3],
    input112_npy: 'face_api/sample1_face0_input112.npy',
    input112_npy_sha256: npySha,
    input112_note: 'float32 HWC RGB in 0..255 after centred pad-to-square + resizeBilinear(112); '
      + 'the nets then compute (x - [122.782, 117.001, 104.298]) / 255',
    outputs_from_crop: fromCrop,
    outputs_from_input112: fromInput,
  };
  cropT.dispose(); in112.dispose();

  // ---- exact end-to-end SSD input: sample1 decoded, 4x4 box-averaged, stored lossless ----------
  const qw = Math.floor(dec.width / 4); const qh = Math.floor(dec.height / 4);
  const q = new Uint8Array(qw * qh * 3);
  for (let y = 0; y < qh; y++) {
    for (let x = 0; x < qw; x++) {
      for (let c = 0; c < 3; c++) {
        let s = 0;
        for (let dy = 0; dy < 4; dy++) for (let dx = 0; dx < 4; dx++) s += dec.data[((4 * y + dy) * dec.width + 4 * x + dx) * 3 + c];
        q[(y * qw + x) * 3 + c] = (s + 8) >> 4;
      }
    }
  }
  const qPng = writePngRGB(path.join(outDir, 'face_api', 'sample1_quarter.png'), q, qw, qh);
  const qRes = await analyse(q, qw, qh);
  const quarter = {
    description: 'sample1.jpg decoded by Pillow, 4x4 box-averaged ((sum+8)>>4), stored as a '
      + 'lossless PNG: a decoder-independent end-to-end input',
    png: 'face_api/sample1_quarter.png',
    png_sha256: qPng,
    width: qw,
    height: qh,
    decoded_rgb_sha256: sha256(q),
    ssd: qRes.ssd,
    num_faces: qRes.faces.length,
    faces: qRes.faces,
  };
  qRes.img.dispose(); res.img.dispose();
  console.log(`sample1_quarter.png ${qw}x${qh}: ${qRes.faces.length} faces; total on samples: ${JSON.stringify(total)}`);

  const fixture = {
    description: 'Outputs of @vladmandic/face-api 1.7.15 (its own JavaScript) on its demo photos; '
      + 'see tools/face_api_reference/README.md for the exact pipeline',
    command: 'cd tools/face_api_reference && npm ci --ignore-scripts && node reference.mjs',
    versions: {
      node: process.versions.node,
      '@vladmandic/face-api': faceapi.version,
      '@tensorflow/tfjs': pkgVersion('@tensorflow/tfjs'),
      '@tensorflow/tfjs-core': tf.version_core,
      'jpeg-js': pkgVersion('jpeg-js'),
      tfjs_backend: tf.getBackend(),
    },
    asset: { name: 'face-api', npm: '@vladmandic/face-api@1.7.15', tarball_sha1: '10cddf5c405f6f52f37605c9ee28c91ac6a23ead' },
    decoders: {
      pillow: { ...pillowVersions(), note: 'Image.open(f).convert("RGB"): libjpeg-turbo islow IDCT + fancy upsampling; identical to OpenCV imread' },
      'jpeg-js': { version: pkgVersion('jpeg-js'), note: 'pure JS; differs from libjpeg-turbo by ~0.5 grey level on average (max 34 on these photos)' },
      primary: 'pillow',
      note: 'neither applies EXIF orientation (all six photos have none) or ICC colour management',
    },
    options: { ...SSD_OPTIONS, iouThreshold: 0.5, inputSize: 512 },
    expression_labels: EXPRESSIONS,
    gender_index: { 0: 'male', 1: 'female' },
    total_faces: total,
    faces_per_image: Object.fromEntries(Object.keys(DECODERS).map((d) => [d, images.map((im) => im.decoders[d].num_faces)])),
    images,
    attribute_input: attribute,
    quarter_image: quarter,
  };
  const outFile = path.join(outDir, 'face_api_reference.json');
  fs.writeFileSync(outFile, `${JSON.stringify(fixture, null, 1)}\n`);
  console.log(`wrote ${outFile}`);
}

main().catch((e) => { console.error(e); process.exit(1); });
