// Random distortions of training images, per image: retrain.py's (flip, crop, scale, brightness) and
// make_image_classifier's (rotation, zoom, shifts). Crop, scale, zoom and shift are one crop box per
// image (tf.image.cropAndResize); rotation is one projective transform per image.
import { projectiveTransform } from "../runtime/native-ops";
import { tf } from "../runtime/tf";

export interface Distortions {
  /** Mirror half of the images left to right. */
  flipLeftRight?: boolean;
  /** Percentage of margin to crop at random (retrain.py --random_crop). */
  randomCrop?: number;
  /** Percentage to enlarge at random before cropping (retrain.py --random_scale). */
  randomScale?: number;
  /** Percentage to brighten or darken at random (retrain.py --random_brightness). */
  randomBrightness?: number;
  /** Maximum rotation in degrees, either way. */
  rotation?: number;
  /** Maximum zoom in or out, as a fraction (0.2: 80 % to 120 %). */
  zoom?: number;
  /** Maximum shift, as a fraction of the side, in each direction. */
  shift?: number;
}

export function hasDistortions(d: Distortions | undefined): boolean {
  return !!d && Object.values(d).some((v) => v === true || (typeof v === "number" && v > 0));
}

/** Returns distorted copies of a batch of pixels 0..255; `random` gives numbers in [0, 1). */
export function distort(images: tf.Tensor4D, d: Distortions, random: () => number): tf.Tensor4D {
  const [n, height, width] = images.shape;
  const between = (low: number, high: number) => low + (high - low) * random();
  return tf.tidy(() => {
    let x = images;
    const boxes: number[][] = [];
    for (let i = 0; i < n; i++) {
      // Fraction of the image the output shows: smaller is a closer crop.
      const crop = 1 / (1 + (d.randomCrop ?? 0) / 100);
      const scale = 1 / between(1, 1 + (d.randomScale ?? 0) / 100);
      const zoom = 1 / between(1 - (d.zoom ?? 0), 1 + (d.zoom ?? 0));
      const extent = crop * scale * zoom;
      const shift = d.shift ?? 0;
      const top = (1 - extent) * random() + between(-shift, shift);
      const left = (1 - extent) * random() + between(-shift, shift);
      boxes.push([top, left, top + extent, left + extent]);
    }
    const moves = boxes.some(([top, left, bottom]) => top !== 0 || left !== 0 || bottom !== 1);
    if (moves) {
      x = tf.image.cropAndResize(x, tf.tensor2d(boxes), tf.range(0, n, 1, "int32") as tf.Tensor1D, [height, width], "bilinear");
    }
    if (d.rotation) {
      const transforms = Array.from({ length: n }, () => {
        const angle = (between(-d.rotation!, d.rotation!) * Math.PI) / 180;
        const [cos, sin] = [Math.cos(angle), Math.sin(angle)];
        const [cx, cy] = [(width - 1) / 2, (height - 1) / 2];
        // Maps output pixel (x, y) to the input pixel it is taken from: rotation about the centre.
        return [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0, 0];
      });
      x = projectiveTransform(x, tf.tensor2d(transforms));
    }
    if (d.flipLeftRight) {
      const flip = tf.tensor1d(Array.from({ length: n }, () => (random() < 0.5 ? 1 : 0)), "bool").reshape([n, 1, 1, 1]);
      x = tf.where(tf.broadcastTo(flip, x.shape), tf.image.flipLeftRight(x), x);
    }
    if (d.randomBrightness) {
      const b = d.randomBrightness / 100;
      x = tf.mul(x, tf.tensor1d(Array.from({ length: n }, () => between(1 - b, 1 + b))).reshape([n, 1, 1, 1]));
    }
    return tf.clipByValue(x, 0, 255) as tf.Tensor4D;
  });
}
