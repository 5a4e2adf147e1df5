// How far an accuracy measured on a few images can be trusted: the two spreads the lab's sentences judge
// differences by (the verdict, advise, the from-scratch row), in one place.

/**
 * The standard error of an accuracy `p` measured on `n` images, Agresti-Coull adjusted (two right and two wrong
 * answers added), so a perfect or a zero score on few images does not claim to be exact: 7 of 7 right gives
 * 0.12, where the plain binomial formula gives 0.
 */
export function accuracyStandardError(p: number, n: number): number {
  const images = Math.max(n, 1) + 4;
  const adjusted = (p * Math.max(n, 1) + 2) / images;
  return Math.sqrt((adjusted * (1 - adjusted)) / images);
}

/** How far a classifier that guesses (right with probability `chance`, known exactly) lands from chance on `n` images: one standard deviation. */
export function guessSpread(chance: number, n: number): number {
  return Math.sqrt((chance * (1 - chance)) / Math.max(n, 1));
}
