// Every options object the library takes is checked by this one mechanism, before any work: a name it does not
// know is refused with "did you mean" (a misspelt option would otherwise be ignored without a word: a cost model
// once priced 137 times the images it was given), and each value by its option's rule, so the error names the
// option and says what it takes. `undefined` means "the default"; `null` is a value and is refused wherever an
// option does not take it. Errors are OptionErrors carrying the option's name, so a caller that speaks another
// language (the command line's flags) maps the name, never the message text.

/** A bad option: `option` names it as the call spells it. */
export class OptionError extends Error {
  constructor(
    readonly option: string,
    message: string,
  ) {
    super(message);
    this.name = "OptionError";
  }
}

/** The known name closest to `name` (case, then one or two typos), for "did you mean". */
export function closest(name: string, known: string[]): string | null {
  const distance = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let previous = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const current = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length];
  };
  const ranked = known.map((k) => ({ k, d: distance(name.toLowerCase(), k.toLowerCase()) })).sort((x, y) => x.d - y.d);
  if (ranked[0] && ranked[0].d <= 2) return ranked[0].k;
  // A longer or shorter spelling of a known name (testPercentage for testPercent).
  const lower = name.toLowerCase();
  return known.find((k) => Math.min(k.length, name.length) >= 4 && (lower.startsWith(k.toLowerCase()) || k.toLowerCase().startsWith(lower))) ?? null;
}

/** "Did you mean" the closest known name, or the list of known names. */
export function suggestion(name: string, known: string[], kind = "options"): string {
  const guess = closest(name, known);
  return guess ? `Did you mean "${guess}"?` : `The ${kind} are ${known.join(", ")}.`;
}

/**
 * A rule checks one given value (never undefined): null when it is fine, else the problem, said after
 * "NAME is VALUE: ", or a whole sentence with {name} and {value} in it.
 */
export type Rule = (value: unknown) => string | null;

const shown = (value: unknown) => (typeof value === "number" || typeof value === "undefined" ? String(value) : typeof value === "function" ? "a function" : JSON.stringify(value) ?? String(value));

/** Rules for the kinds of options the library takes; each returns what to give instead. */
export const rule = {
  /** A whole number from `least` (up to `most`). */
  whole: (least: number, most = Infinity): Rule => (v) =>
    typeof v === "number" && Number.isInteger(v) && v >= least && v <= most ? null : `use a whole number of at least ${least}${most < Infinity ? ` and at most ${most}` : ""}.`,
  /** A finite number above 0 (up to `most`). */
  positive: (most = Infinity): Rule => (v) => (typeof v === "number" && Number.isFinite(v) && v > 0 && v <= most ? null : `it must be a finite number above 0${most < Infinity ? ` and at most ${most}` : ""}.`),
  /** A number from `least` to `most`, both included. */
  between: (least: number, most: number): Rule => (v) => (typeof v === "number" && v >= least && v <= most ? null : `use a number from ${least} to ${most}.`),
  /** 0 up to below 1. */
  fraction: (): Rule => (v) => (typeof v === "number" && v >= 0 && v < 1 ? null : "use 0 up to below 1."),
  boolean: (): Rule => (v) => (typeof v === "boolean" ? null : "use true or false."),
  /** One of the listed values: `{name}: "x" is not one of a, b.` (or another `what` than "not one of"). */
  oneOf: <T>(values: readonly T[], what = "not one of"): Rule => (v) => (values.includes(v as T) ? null : `{name}: {value} is ${what} ${values.join(", ")}.`),
  /** A non-empty string (a path, a name). */
  text: (what = "give a path."): Rule => (v) => (typeof v === "string" && v !== "" ? null : what),
  func: (): Rule => (v) => (typeof v === "function" ? null : "give a function."),
  /** An object (its own fields checked by whoever reads it). */
  object: (what = "give an object."): Rule => (v) => (typeof v === "object" && v !== null && !Array.isArray(v) ? null : what),
  /** An array whose every item passes `item`. */
  list: (item: Rule, what = "give a list."): Rule => (v) => (Array.isArray(v) ? (v.map(item).find((p) => p !== null) ?? null) : what),
  /** Anything (checked where it is used: a network, a data set, callbacks). */
  any: (): Rule => () => null,
  /** The rule, or null as a value of its own. */
  orNull: (inner: Rule): Rule => (v) => (v === null ? null : inner(v)),
  /** Either rule. */
  either: (a: Rule, b: Rule): Rule => (v) => (a(v) === null || b(v) === null ? null : a(v)),
};

/** The message of a value that breaks its rule: "NAME is VALUE: what to give". */
export function badValue(name: string, value: unknown, problem: string): OptionError {
  const message = problem.includes("{name}") ? problem.replace("{name}", name).replace("{value}", shown(value)) : `${name} is ${shown(value)}: ${problem}`;
  return new OptionError(name, message);
}

/**
 * Checks `options` for `call`: every name must be in `rules` (else "did you mean"), every value that is not
 * undefined must pass its rule. Returns the options; throws an OptionError naming the first bad one.
 */
export function checkOptions<T extends object>(options: T | undefined | null, rules: Record<string, Rule>, call: string): T {
  if (options === undefined) return {} as T;
  if (typeof options !== "object" || options === null || Array.isArray(options)) throw new OptionError(call, `${call}: options are ${shown(options)}: give an object, such as { ${Object.keys(rules)[0]}: ... }.`);
  checkNames(options, Object.keys(rules), call);
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    const problem = rules[name](value);
    if (problem !== null) throw badValue(name, value, problem);
  }
  return options;
}

/** Throws for names of `given` that are not in `known`, suggesting the closest one. */
export function checkNames(given: object, known: string[], call: string): void {
  for (const name of Object.keys(given)) {
    if (!known.includes(name)) throw new OptionError(name, `${call}: there is no option "${name}". ${suggestion(name, known)}`);
  }
}
