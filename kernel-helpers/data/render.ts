// Drawing the generated data sets: a shape (any "inside" test on a unit frame) with random colour,
// scale, rotation and place on a noisy two-colour gradient. The shapes and textures of syntheticShapes,
// and two glyphs whose mirror images make syntheticMirrors.

/** Whether a point of the unit frame (u, v in [-1, 1]) is inside the shape. */
export type Inside = (u: number, v: number) => boolean;
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

/** The same shape, mirrored left to right: no rotation turns one into the other. */
export const mirrored = (shape: Inside): Inside => (u, v) => shape(-u, v);

/**
 * Two glyphs with a handedness. Under any rotation an L stays an L and never becomes its mirror image;
 * telling them apart needs the arrangement of the whole glyph (which side the short arm is on).
 */
export const GLYPHS: Record<string, Inside> = {
  L: (u, v) => (u >= -0.6 && u <= -0.2 && v >= -0.8 && v <= 0.8) || (u >= -0.6 && u <= 0.6 && v >= 0.4 && v <= 0.8),
  F: (u, v) => (u >= -0.5 && u <= -0.2 && v >= -0.8 && v <= 0.8) || (u >= -0.5 && u <= 0.6 && v >= -0.8 && v <= -0.5) || (u >= -0.5 && u <= 0.3 && v >= -0.15 && v <= 0.15),
};

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

