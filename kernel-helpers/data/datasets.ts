// Ready-made data sets: TensorFlow's flower photos (downloaded once), and generated shapes and
// textures that need no network (for offline use, tutorials and tests).
import * as fs from "fs";
import * as path from "path";
import sharp from "sharp";
import { cacheDir, cachedDownload, downloadable } from "../util/download";
import { seededRandom } from "../util/random";
import { datasetFolder } from "./dataset-folder";
import { imageFolder, type ImageFolder, type ImageFolderOptions } from "./image-folder";

const FLOWERS_URL = "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz";
const FLOWER_CLASSES = ["daisy", "dandelion", "roses", "sunflowers", "tulips"];

/** Whether flower_photos is cached or can be downloaded now (the notebooks choose with it). */
export async function flowersAvailable(): Promise<boolean> {
  if (fs.existsSync(path.join(cacheDir("datasets"), "flower_photos", "daisy"))) return true;
  return downloadable(process.env.INCEPTION_LAB_FLOWERS_URL ?? FLOWERS_URL, "flower_photos.tgz", "downloads");
}

/**
 * TensorFlow's flower_photos (5 classes, 3,670 JPEGs, 218 MB): downloaded once into the cache folder
 * (resumed if interrupted; gzip's CRC checks the archive while it is unpacked), then read as an image folder.
 */
export async function flowers(options: ImageFolderOptions = {}): Promise<ImageFolder> {
  const url = process.env.INCEPTION_LAB_FLOWERS_URL ?? FLOWERS_URL;
  const root = await datasetFolder(path.join(cacheDir("datasets"), "flower_photos"), {
    description: { dataset: "flower_photos", url },
    fill: async (tmp) => {
      const archive = await cachedDownload(url, "flower_photos.tgz", {
        subdir: "downloads",
        offlineHint: "Offline? If you have a copy, use imageFolder('/path/to/flower_photos'); otherwise syntheticShapes() generates a data set locally.",
      });
      const tar: typeof import("tar") = require("tar");
      try {
        await tar.x({ file: archive, cwd: tmp, strip: 1 });
      } catch (error) {
        fs.rmSync(archive);
        throw new Error(`${archive} is damaged (${(error as Error).message}); it was removed: run the cell again to download it afresh.`);
      }
      const missing = FLOWER_CLASSES.filter((c) => !fs.existsSync(path.join(tmp, c)));
      if (missing.length) throw new Error(`${archive} unpacked without the folders ${missing.join(", ")}: not the flower_photos archive.`);
    },
  });
  return imageFolder(root, options);
}

type Inside = (u: number, v: number) => boolean;
const radius = (u: number, v: number) => Math.hypot(u, v);

/** Shapes and textures in a unit frame (u, v in [-1, 1]); a point is drawn when `inside` holds. */
export const SHAPES: Record<string, Inside> = {
  circle: (u, v) => radius(u, v) <= 0.9,
  square: (u, v) => Math.max(Math.abs(u), Math.abs(v)) <= 0.75,
  triangle: (u, v) => v >= -1 && v <= 0.6 && Math.abs(u) <= (v + 1) * 0.58,
  star: (u, v) => radius(u, v) <= 0.5 + 0.42 * Math.cos(5 * Math.atan2(v, u)),
  cross: (u, v) => (Math.abs(u) <= 0.25 && Math.abs(v) <= 0.9) || (Math.abs(v) <= 0.25 && Math.abs(u) <= 0.9),
  ring: (u, v) => radius(u, v) >= 0.55 && radius(u, v) <= 0.95,
  stripes: (u, v) => radius(u, v) <= 0.95 && Math.sin(u * 14) > 0,
  checker: (u, v) => Math.max(Math.abs(u), Math.abs(v)) <= 0.85 && (Math.floor(u * 3.5) + Math.floor(v * 3.5)) % 2 === 0,
  dots: (u, v) => radius(u, v) <= 0.95 && (((u * 3 + 10) % 1) - 0.5) ** 2 + (((v * 3 + 10) % 1) - 0.5) ** 2 < 0.07,
  hexagon: (u, v) => Math.max(Math.abs(u) * 0.866 + Math.abs(v) * 0.5, Math.abs(v)) <= 0.8,
};

export interface SyntheticOptions {
  /** How many classes, from the SHAPES list (2 to 10). */
  classes?: number;
  perClass?: number;
  /** Image side in pixels. */
  size?: number;
  seed?: number;
  /** Where to write; default a folder in the cache named after the options. */
  dir?: string;
  folderOptions?: ImageFolderOptions;
}

function hsl(h: number, s: number, l: number): [number, number, number] {
  const f = (n: number) => {
    const k = (n + h * 12) % 12;
    return 255 * (l - s * Math.min(l, 1 - l) * Math.max(-1, Math.min(k - 3, 9 - k, 1)));
  };
  return [f(0), f(8), f(4)];
}

/** Renders one image: a shape with random colour, scale, rotation and place on a noisy gradient. */
export function renderShape(shape: Inside, size: number, random: () => number): Uint8Array {
  const pixels = new Uint8Array(size * size * 3);
  const background = [hsl(random(), 0.3 + 0.4 * random(), 0.2 + 0.6 * random()), hsl(random(), 0.3 + 0.4 * random(), 0.2 + 0.6 * random())];
  const backgroundLightness = (background[0].reduce((a, b) => a + b) + background[1].reduce((a, b) => a + b)) / 6 / 255;
  // Keep the shape visible: dark shapes on light backgrounds and the other way round.
  const foreground = hsl(random(), 0.5 + 0.5 * random(), backgroundLightness > 0.5 ? 0.15 + 0.2 * random() : 0.65 + 0.2 * random());
  const scale = size * (0.22 + 0.2 * random());
  const angle = random() * 2 * Math.PI;
  const [cx, cy] = [size * (0.35 + 0.3 * random()), size * (0.35 + 0.3 * random())];
  const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
  const gradientAngle = random() * 2 * Math.PI;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = ((x - cx) * cos + (y - cy) * sin) / scale;
      const v = (-(x - cx) * sin + (y - cy) * cos) / scale;
      const t = 0.5 + 0.5 * (((x / size - 0.5) * Math.cos(gradientAngle) + (y / size - 0.5) * Math.sin(gradientAngle)) * 1.4);
      const noise = (random() - 0.5) * 30;
      const colour = shape(u, v) ? foreground : background[0].map((c, i) => c * (1 - t) + background[1][i] * t);
      const offset = (y * size + x) * 3;
      for (let i = 0; i < 3; i++) pixels[offset + i] = Math.max(0, Math.min(255, colour[i] + noise));
    }
  }
  return pixels;
}

/**
 * Writes (once) a deterministic generated data set of shapes and textures as JPEG class folders and
 * reads it as an image folder. The same options always give the same images.
 */
export async function syntheticShapes(options: SyntheticOptions = {}): Promise<ImageFolder> {
  const { classes = 6, perClass = 40, size = 128, seed = 0 } = options;
  const names = Object.keys(SHAPES);
  if (!Number.isInteger(classes) || classes < 2 || classes > names.length) throw new Error(`classes is ${classes}: use 2 to ${names.length}.`);
  if (!Number.isInteger(perClass) || perClass < 1) throw new Error(`perClass is ${perClass}: use a whole number of at least 1.`);
  if (!Number.isInteger(size) || size < 16) throw new Error(`size is ${size}: use at least 16 pixels.`);
  const dir = options.dir ?? path.join(cacheDir("datasets"), `shapes-${classes}x${perClass}-${size}px-seed${seed}`);
  const chosen = names.slice(0, classes);
  const fileName = (name: string, i: number) => path.join(name, `${name}_${String(i).padStart(4, "0")}.jpg`);
  const made = await datasetFolder(dir, {
    description: { generator: "syntheticShapes", classes, perClass, size, seed },
    files: chosen.flatMap((name) => Array.from({ length: perClass }, (_, i) => fileName(name, i))),
    fill: async (tmp) => {
      for (const [classIndex, name] of chosen.entries()) {
        const random = seededRandom(seed * 1000 + classIndex);
        fs.mkdirSync(path.join(tmp, name));
        for (let i = 0; i < perClass; i++) {
          const pixels = renderShape(SHAPES[name], size, random);
          await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(tmp, fileName(name, i)));
        }
      }
    },
  });
  return imageFolder(made, { minImagesPerClass: Math.min(20, perClass), ...options.folderOptions });
}
