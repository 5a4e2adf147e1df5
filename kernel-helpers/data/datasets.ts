// Ready-made data sets: TensorFlow's flower photos (downloaded once), and two generated sets that need
// no network: shapes and textures the pretrained features separate well, and glyphs and their mirror
// images that they do not (offline use, tutorials and tests).
import * as fs from "fs";
import * as path from "path";
import sharp from "sharp";
import { cacheDir, cachedDownload, downloadable } from "../util/download";
import { checkOptions, rule } from "../util/options";
import { seededRandom } from "../util/random";
import { datasetFolder } from "./dataset-folder";
import { FOLDER_RULES, imageFolder, type ImageFolder, type ImageFolderOptions } from "./image-folder";
import { GLYPHS, type Inside, mirrored, renderShape, SHAPES } from "./render";

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
  checkOptions(options, FOLDER_RULES, "flowers"); // before a 218 MB download, not after it
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

const SYNTHETIC_RULES = { classes: rule.whole(2, 10), perClass: rule.whole(1), imageSize: rule.whole(16, 4096), seed: rule.whole(0), dir: rule.text("give a folder path."), folderOptions: rule.object() };

export interface SyntheticOptions {
  /** How many classes: syntheticShapes takes 2 to 10 from its list. */
  classes?: number;
  perClass?: number;
  /** The generated images' side in pixels (the network resizes them to its inputSize). */
  imageSize?: number;
  seed?: number;
  /** Where to write; default a folder in the cache named after the options. */
  dir?: string;
  folderOptions?: ImageFolderOptions;
}

/**
 * A deterministic generated data set: `perClass` images of each shape as JPEG class folders, written
 * once (datasetFolder) and read as an image folder. The same options always give the same images.
 */
async function generatedSet(generator: string, shapes: Record<string, Inside>, options: SyntheticOptions, defaults: { perClass: number; imageSize: number }): Promise<ImageFolder> {
  checkOptions(options, SYNTHETIC_RULES, generator);
  const { perClass = defaults.perClass, imageSize: size = defaults.imageSize, seed = 0 } = options;

  const names = Object.keys(shapes);
  const slug = generator === "syntheticShapes" ? `shapes-${names.length}x${perClass}` : `${generator}-${perClass}`;
  const dir = options.dir ?? path.join(cacheDir("datasets"), `${slug}-${size}px-seed${seed}`);
  const fileName = (name: string, i: number) => path.join(name, `${name.replace(/ /g, "_")}_${String(i).padStart(4, "0")}.jpg`);
  const made = await datasetFolder(dir, {
    // "size" as earlier versions named it in the marker, so their folders are still recognised.
    description: { generator, classes: names.length, perClass, size, seed },
    files: names.flatMap((name) => Array.from({ length: perClass }, (_, i) => fileName(name, i))),
    fill: async (tmp) => {
      for (const [classIndex, name] of names.entries()) {
        const random = seededRandom(seed * 1000 + classIndex);
        fs.mkdirSync(path.join(tmp, name));
        for (let i = 0; i < perClass; i++) {
          const pixels = renderShape(shapes[name], size, random);
          await sharp(pixels, { raw: { width: size, height: size, channels: 3 } }).jpeg({ quality: 90 }).toFile(path.join(tmp, fileName(name, i)));
        }
      }
    },
  });
  return imageFolder(made, { minImagesPerClass: Math.min(20, perClass), ...options.folderOptions });
}

/**
 * Generated shapes and textures (circle, square, triangle, star, ...): pretrained features separate
 * them well, so retraining the final layer is enough here.
 */
export async function syntheticShapes(options: SyntheticOptions = {}): Promise<ImageFolder> {
  const { classes = 6 } = options;
  const names = Object.keys(SHAPES);
  if (!Number.isInteger(classes) || classes < 2 || classes > names.length) throw new Error(`classes is ${classes}: use 2 to ${names.length}.`);
  return generatedSet("syntheticShapes", Object.fromEntries(names.slice(0, classes).map((n) => [n, SHAPES[n]])), options, { perClass: 40, imageSize: 128 });
}

/**
 * Two glyphs and their mirror images (classes "L", "L mirrored", "F", "F mirrored"), each at a random
 * angle, size, place and colour. The pretrained network's pooled features tell an L from an F, but
 * hardly an L from its mirror image (measured: a linear probe on bundled mixed7 features 0.50, chance
 * 0.25; on the shapes 1.00); a fine-tuned network learns the difference. Here fine-tuning wins.
 * Never train on it with flipLeftRight distortions: a flip turns one class into another.
 */
export async function syntheticMirrors(options: Omit<SyntheticOptions, "classes"> = {}): Promise<ImageFolder> {
  const { classes: _, ...rules } = SYNTHETIC_RULES;
  checkOptions(options, rules, "syntheticMirrors"); // four classes always: two glyphs and their mirror images
  const shapes = Object.fromEntries(Object.entries(GLYPHS).flatMap(([name, glyph]) => [[name, glyph], [`${name} mirrored`, mirrored(glyph)]]));
  return generatedSet("syntheticMirrors", shapes, options, { perClass: 150, imageSize: 128 });
}
