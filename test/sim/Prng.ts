/**
 * The simulator's only source of chance: sfc32 seeded through splitmix32, so
 * a seed (any integer) replays exactly, on any machine, in any process.
 */

/** splitmix32: spreads a small seed over 32 well-mixed bits. */
const splitmix = (state: number): [number, number] => {
  const next = (state + 0x9e3779b9) | 0
  let z = next
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b)
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35)
  return [next, (z ^ (z >>> 16)) >>> 0]
}

export class Prng {
  private a: number
  private b: number
  private c: number
  private d: number

  constructor(seed: number) {
    let s = seed | 0
    const words: Array<number> = []
    for (let i = 0; i < 4; i++) {
      const [next, word] = splitmix(s)
      s = next
      words.push(word)
    }
    ;[this.a, this.b, this.c, this.d] = words as [number, number, number, number]
    // sfc32 needs a few rounds before its output is independent of the seed's shape.
    for (let i = 0; i < 12; i++) this.next()
  }

  /** A uniform 32-bit unsigned integer. */
  next(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0
    this.d = (this.d + 1) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.c = (this.c + t) | 0
    return t >>> 0
  }

  /** A uniform float in [0, 1). */
  float(): number {
    return this.next() / 4294967296
  }

  /** A uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n)
  }

  /** A uniform integer in [lo, hi]. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1)
  }

  chance(p: number): boolean {
    return this.float() < p
  }

  pick<A>(items: ReadonlyArray<A>): A {
    return items[this.int(items.length)]!
  }

  /** A child generator: what it draws does not shift this one's sequence beyond one draw. */
  fork(): Prng {
    return new Prng(this.next())
  }
}
