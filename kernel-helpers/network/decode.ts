// Image files to pixels the network takes: any JPEG/PNG/GIF/BMP (grayscale, RGBA, CMYK, 16-bit,
// EXIF-rotated) becomes RGB uint8, stretched to size x size as retrain.py does. libvips (through sharp)
// decodes off the JavaScript thread, so decoding the next batches overlaps the network's compute.
import * as fs from "fs";
import sharp from "sharp";
import { tf } from "../runtime/tf";

/** Images with more pixels than this are refused (decompression bombs, accidental panoramas). */
export const MAX_PIXELS = 100_000_000;

export class ImageDecodeError extends Error {}

async function bmpToRaw(file: string): Promise<sharp.Sharp> {
  // libvips has no BMP loader; TensorFlow's decoder does.
  const pixels = tf.node.decodeImage(fs.readFileSync(file), 3, "int32", false) as tf.Tensor3D;
  try {
    const [height, width] = pixels.shape;
    return sharp(Buffer.from(await pixels.data()), { raw: { width, height, channels: 3 } });
  } finally {
    pixels.dispose();
  }
}

/** An image file as a small JPEG data URL (for galleries in a notebook), optionally under a heatmap (rows of 0..1: blue, none, to red, most). */
export async function thumbnail(file: string, options: { size?: number; heatmap?: number[][] } = {}): Promise<string> {
  const { size = 128, heatmap } = options;
  const pixels = await decodeFile(file, size);
  const jpeg = tf.tidy(() => {
    const image = tf.tensor3d(pixels, [size, size, 3], "int32");
    if (!heatmap) return image;
    const heat = tf.image.resizeBilinear(tf.tensor3d(heatmap.map((row) => row.map((v) => [v]))), [size, size]) as tf.Tensor3D;
    const channel = (centre: number) => tf.clipByValue(tf.sub(1.5, tf.abs(tf.sub(tf.mul(heat, 4), centre))), 0, 1);
    const colour = tf.concat([channel(3), channel(2), channel(1)], 2);
    return tf.add(tf.mul(image.toFloat(), 0.5), tf.mul(colour, 127)).toInt() as tf.Tensor3D;
  });
  try {
    return `data:image/jpeg;base64,${Buffer.from(await tf.node.encodeJpeg(jpeg, "rgb", 85)).toString("base64")}`;
  } finally {
    jpeg.dispose();
  }
}

/** Decodes one file to RGB uint8 bytes, size x size x 3. Throws ImageDecodeError with a reason. */
export async function decodeFile(file: string, size: number): Promise<Uint8Array> {
  try {
    const isBmp = fs.readFileSync(file, { flag: "r" }).subarray(0, 2).toString("latin1") === "BM";
    const image = isBmp ? await bmpToRaw(file) : sharp(file, { failOn: "error", limitInputPixels: MAX_PIXELS, pages: 1 });
    const data = await image
      .rotate() // applies the EXIF orientation
      .flatten({ background: "#ffffff" }) // transparent areas become white, not black
      .toColourspace("srgb") // CMYK, grayscale and 16-bit all end as 8-bit sRGB
      .resize(size, size, { fit: "fill", kernel: "linear" })
      .removeAlpha()
      .raw({ depth: "uchar" })
      .toBuffer();
    if (data.length !== size * size * 3) throw new Error(`decoded to ${data.length} bytes, expected ${size * size * 3}`);
    return data;
  } catch (error) {
    const message = (error as Error).message.split("\n")[0];
    if (/pixel limit/i.test(message)) throw new ImageDecodeError(`image larger than ${MAX_PIXELS / 1e6} megapixels`);
    throw new ImageDecodeError(`cannot decode: ${message}`);
  }
}

/** Decodes files into one float32 batch [n, size, size, 3] of pixels 0..255; failures are listed apart. */
export async function decodeBatch(
  files: string[],
  size: number,
): Promise<{ images: tf.Tensor4D; decoded: number[]; failed: { index: number; reason: string }[] }> {
  const results = await Promise.allSettled(files.map((file) => decodeFile(file, size)));
  const decoded: number[] = [];
  const failed: { index: number; reason: string }[] = [];
  const pixels = new Uint8Array(results.filter((r) => r.status === "fulfilled").length * size * size * 3);
  results.forEach((result, index) => {
    if (result.status === "fulfilled") {
      pixels.set(result.value, decoded.length * size * size * 3);
      decoded.push(index);
    } else {
      failed.push({ index, reason: (result.reason as Error).message });
    }
  });
  const images = tf.tidy(() => tf.tensor4d(pixels, [decoded.length, size, size, 3], "int32").toFloat() as tf.Tensor4D);
  return { images, decoded, failed };
}
