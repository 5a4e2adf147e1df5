// Images as the network takes them: float32 [n, size, size, 3] batches of RGB pixels 0..255.
import type { Tensor, Tensor3D, Tensor4D } from "@tensorflow/tfjs-node";
import { tf } from "../runtime/tf";
import { decodeBatch, ImageDecodeError } from "./decode";

/** Image files (paths), one image [h, w, 3], a batch [n, h, w, 3], a list of images, or batches produced lazily. */
export type ImageInput = string | string[] | Tensor | Tensor3D[] | AsyncIterable<Tensor4D>;

function describe(t: Tensor): string {
  return `${t.dtype} tensor of shape [${t.shape.join(", ")}]`;
}

/** Checks one batch and resizes it to size x size (bilinear), as float32. Does not dispose `images`. */
export function prepareBatch(images: Tensor, size: number): Tensor4D {
  const batch = images.rank === 3 ? images.expandDims(0) : images;
  try {
    if (batch.rank !== 4 || batch.shape[3] !== 3) {
      throw new Error(
        `Expected RGB images as [height, width, 3] or [n, height, width, 3], got a ${describe(images)}. ` +
          `Grayscale needs tf.tile(x, [1, 1, 3]); RGBA needs x.slice([0, 0, 0], [-1, -1, 3]).`,
      );
    }
    if (batch.dtype !== "float32" && batch.dtype !== "int32") {
      throw new Error(`Expected pixel values 0..255 as int32 or float32, got a ${describe(images)}.`);
    }
    return tf.tidy(() => {
      const floats = batch.toFloat() as Tensor4D;
      const [, h, w] = floats.shape;
      return h === size && w === size ? floats : tf.image.resizeBilinear(floats, [size, size]);
    });
  } finally {
    if (batch !== images) batch.dispose();
  }
}

/** The files of `images` when it names files, else undefined. */
export function pathsOf(images: ImageInput): string[] | undefined {
  return typeof images === "string" ? [images] : Array.isArray(images) && images.length > 0 && typeof images[0] === "string" ? (images as string[]) : undefined;
}

/** `model` (a batch of images in, class probabilities out) over every image of `images`, one row each. */
export async function probabilitiesOf(images: ImageInput, size: number, batchSize: number, model: (batch: Tensor4D) => Tensor | Promise<Tensor>): Promise<number[][]> {
  const rows: number[][] = [];
  for await (const batch of batchesOf(images, size, batchSize)) {
    const output = await Promise.resolve(model(batch)).finally(() => batch.dispose());
    rows.push(...((await output.array()) as number[][]));
    output.dispose();
  }
  return rows;
}

/** Yields prepared batches of at most batchSize images; the caller disposes each. */
export async function* batchesOf(images: ImageInput, size: number, batchSize: number): AsyncGenerator<Tensor4D> {
  if (typeof images === "string" || (Array.isArray(images) && images.length > 0 && typeof images[0] === "string")) {
    const files = [images].flat() as string[];
    for (let i = 0; i < files.length; i += batchSize) {
      const chunk = files.slice(i, i + batchSize);
      const { images: batch, failed } = await decodeBatch(chunk, size);
      if (failed.length) {
        batch.dispose();
        throw new ImageDecodeError(failed.map((f) => `${chunk[f.index]}: ${f.reason}`).join("; "));
      }
      yield batch;
    }
    return;
  }
  if (Symbol.asyncIterator in images) {
    for await (const batch of images as AsyncIterable<Tensor4D>) {
      try {
        yield prepareBatch(batch, size);
      } finally {
        batch.dispose();
      }
    }
    return;
  }
  if (Array.isArray(images)) {
    const list = images as Tensor3D[];
    for (let i = 0; i < list.length; i += batchSize) {
      const prepared = list.slice(i, i + batchSize).map((image) => prepareBatch(image, size));
      yield tf.concat(prepared) as Tensor4D;
      tf.dispose(prepared);
    }
    return;
  }
  const all = images as Tensor;
  const count = all.rank === 4 ? all.shape[0] : 1;
  for (let i = 0; i < count; i += batchSize) {
    const slice = all.rank === 4 ? all.slice(i, Math.min(batchSize, count - i)) : all;
    try {
      yield prepareBatch(slice, size);
    } finally {
      if (slice !== all) slice.dispose();
    }
  }
}
