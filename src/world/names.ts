/**
 * Invented, pronounceable names for the world's entities, built from syllables. Every name (and every
 * word of a multi-word name) is unique across the whole world, never an English word of the world's
 * sentences, so that a fact can only be known by having read it.
 */
import type { Rng } from "./rng.js";

const ONSETS = [
  "b",
  "d",
  "f",
  "g",
  "k",
  "l",
  "m",
  "n",
  "p",
  "r",
  "s",
  "t",
  "v",
  "z",
  "br",
  "dr",
  "kr",
  "tr",
  "st",
  "th",
  "sh",
  "gl",
  "pl",
  "fr",
];
const VOWELS = ["a", "e", "i", "o", "u", "a", "e", "o", "ai", "ou"];
const CODAS = ["", "", "", "n", "r", "l", "s", "m", "k", "th", "x"];

/** Suffixes that give each kind of name its own flavour. */
const SUFFIX: Record<NameKind, string[]> = {
  country: ["ia", "ar", "and", "ova", "esh", "istan", "ora", "en"],
  city: ["", "", "burg", "mar", "dale", "ton", "vik", "hold", "ford", "port"],
  first: ["", "", "", "a", "o", "in", "el"],
  last: ["", "sen", "ov", "ez", "ard", "ley", "ini", "berg"],
  company: ["", "", "ex", "ix", "on", "co"],
  river: ["", "", "a", "e"],
  landmark: ["", "", "an", "or"],
};

export type NameKind = "country" | "city" | "first" | "last" | "company" | "river" | "landmark";

/** Lengths (in letters) of each kind of name. */
const LENGTH: Record<NameKind, [number, number]> = {
  country: [5, 9],
  city: [5, 9],
  first: [4, 7],
  last: [5, 9],
  company: [5, 8],
  river: [4, 7],
  landmark: [5, 8],
};

/** English words of the world's sentences; a generated name never equals one of them (lower-cased). */
const RESERVED = new Set(
  (
    "a an and are as at be by for from has have he her his in is it its of on or she so that the their " +
    "then they this to was were what where which who why with yes no not true false answer question sure " +
    "river city tower gate palace bridge temple group works company industries trading people person " +
    "king queen main old new more left now each bag bags box boxes jar jars basket baskets ball balls " +
    "apples coins books stamps shells marbles eggs pencils cards flowers stones cups red blue green yellow " +
    "black white knife hammer broom pen spoon needle saw key bucket ladder umbrella lamp net comb towel " +
    "shovel kettle map clock brush bed stove book cow boat loaf plane train teacher nurse painting tent " +
    "whale monkey camel coin car flower dog cat lion snake horse sheep duck owl frog bee pig bedroom " +
    "kitchen library farm harbour bakery airport station school hospital museum camp ocean jungle desert " +
    "purse garage garden doctor painter farmer baker lawyer pilot sailor singer writer builder cars ships " +
    "bread phones shoes clocks paper glass toys bicycles market factory workers water supply help visit " +
    "rob hurt flood cheat poison attack wreck threaten kidnap burn steal clean protect read sing draw plan " +
    "oven fork rope candle blanket mirror whistle pillow plate judge court chef restaurant soldier fort " +
    "fish pond bird nest shirt closet bus road star sky desk office seed field wolf goat mouse crow " +
    "ones tens carry borrow write"
  ).split(" "),
);

export class NameMaker {
  private readonly used = new Set<string>();

  constructor(private readonly rng: Rng) {}

  private syllable(): string {
    return this.rng.pick(ONSETS) + this.rng.pick(VOWELS) + this.rng.pick(CODAS);
  }

  /** A fresh name of a kind, unique across everything this maker produced. */
  make(kind: NameKind, syllables: [number, number] = [2, 2]): string {
    for (let attempt = 0; attempt < 10000; attempt++) {
      const n = this.rng.range(syllables[0], syllables[1]);
      let s = "";
      for (let i = 0; i < n; i++) s += this.syllable();
      const suffix = this.rng.pick(SUFFIX[kind]);
      // avoid doubled vowels or consonants at the junction (Kelaa, Dunnmar)
      if (suffix && s[s.length - 1] === suffix[0]) continue;
      s += suffix;
      const [lo, hi] = LENGTH[kind];
      if (s.length < lo || s.length > hi) continue;
      const key = s.toLowerCase();
      if (RESERVED.has(key) || this.used.has(key)) continue;
      this.used.add(key);
      return s[0]?.toUpperCase() + s.slice(1);
    }
    throw new Error(`NameMaker: could not find a fresh ${kind} name`);
  }

  /** Marks a name as taken (a fixed word that generated names must not repeat). */
  reserve(name: string): void {
    this.used.add(name.toLowerCase());
  }
}
