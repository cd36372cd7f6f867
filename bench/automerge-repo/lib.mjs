// Shared helpers of the automerge-repo side of `tessera-bench compare`: argument
// parsing, a deterministic synthetic attendee generator (used when no records file is
// given), the time cap of a phase, and the one-line JSON result every script prints.

import { readFileSync } from "node:fs"

/** `--key value` and `--flag` arguments into an object (values stay strings). */
export function parseArgs(argv = process.argv.slice(2)) {
  const out = {}
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`)
    const key = a.slice(2)
    if (i + 1 < argv.length && !argv[i + 1].startsWith("--")) out[key] = argv[++i]
    else out[key] = true
  }
  return out
}

export function intArg(args, key, fallback) {
  if (args[key] === undefined) return fallback
  const v = Number.parseInt(args[key], 10)
  if (!Number.isFinite(v) || v < 0) throw new Error(`--${key} must be a non-negative integer`)
  return v
}

/** Prints the script's result as one JSON line on stdout (the orchestrator reads it). */
export function emit(result) {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`)
}

/** Progress for the orchestrator, on stderr: `PROGRESS <done> [phase]`. */
export function progress(done, phase = "") {
  process.stderr.write(`PROGRESS ${done} ${phase}\n`)
}

/**
 * Waits for `check()` (polled every `everyMs`) to return true, at most `capMs`.
 * Returns true when it did, false at the cap.
 */
export async function waitUntil(check, capMs, everyMs = 100) {
  const deadline = Date.now() + capMs
  for (;;) {
    if (await check()) return true
    if (Date.now() >= deadline) return false
    await new Promise(r => setTimeout(r, everyMs))
  }
}

// Synthetic, Italian-looking names: never real people.
const GIVEN = ["Giulia", "Marco", "Chiara", "Luca", "Sara", "Matteo", "Elena", "Davide", "Francesca",
  "Alessio", "Martina", "Simone", "Ilaria", "Tommaso", "Beatrice", "Nicolò", "Aurora", "Samir", "Amina", "Yusuf"]
const FAMILY = ["Rossetti", "Bianchelli", "Ferraresi", "Colombari", "Marchetti", "Galvani", "Fontanesi",
  "Lombardini", "Barbieri", "Moretto", "Santoro", "Caruselli", "Pellegrino", "Vitale", "Orsini", "El Amrani"]
const SCHOOLS = ["IC Manzoni", "ITIS Volta", "Liceo Galilei", "IC Don Milani", "IPSIA Ferrari"]
const TOWNS = ["Borgo San Lazzaro", "Castelverde", "Montefiore", "Sant'Anselmo", "Valdirena"]

function mulberry32(seed) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** N attendee records shaped like Tessera's `Attendee` (serde JSON of the Rust struct). */
export function syntheticAttendees(n, seed = 1) {
  const rnd = mulberry32(seed)
  const pick = xs => xs[Math.floor(rnd() * xs.length)]
  const out = []
  for (let i = 0; i < n; i++) {
    const student = rnd() < 0.68
    const given = pick(GIVEN)
    const family = pick(FAMILY)
    const year = student ? 2008 + Math.floor(rnd() * 12) : 1950 + Math.floor(rnd() * 50)
    out.push({
      given_name: given,
      family_name: family,
      birth_year: year,
      role: student ? "student" : "citizen",
      school: student ? `${pick(SCHOOLS)} ${pick(TOWNS)}` : null,
      class: student ? `${1 + Math.floor(rnd() * 5)}${pick(["A", "B", "C"])}` : null,
      guardian: student ? { name: `${pick(GIVEN)} ${family}`, phone: `+39 3${String(Math.floor(rnd() * 1e9)).padStart(9, "0")}`, email: null } : null,
      phone: student ? null : `+39 3${String(Math.floor(rnd() * 1e9)).padStart(9, "0")}`,
      email: null,
      languages: ["italiano"],
      consent: { date: "2026-03-02", given_by: student ? "guardian" : "attendee", operator: "Operatore Prova" },
      referent_operator: null,
      plan_notes: "",
      site: "0000000000000000000000000000000000",
      merged_into: null,
      not_duplicates_of: [],
    })
  }
  return out
}

/** Records from `--records FILE` (a JSON array), else `--n` synthetic ones. */
export function loadRecords(args) {
  if (args.records) return JSON.parse(readFileSync(args.records, "utf8"))
  return syntheticAttendees(intArg(args, "n", 1000), intArg(args, "seed", 1))
}
