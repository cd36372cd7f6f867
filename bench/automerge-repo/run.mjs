// automerge-repo on the job of `tessera-bench compare`, for one N: a sync server
// (server.mjs) on loopback, a writer peer that creates N attendee documents and pushes
// them to it (writer.mjs), then a fresh reader peer that loads all N from it
// (reader.mjs). Each is its own process, as they would be on three machines. Each
// peer phase is capped (--cap-secs); a phase that hits the cap, or whose process
// stops answering, is reported as not finished, with how far it got.
//
// Wire bytes are the websocket message payloads counted by the server, both ways.
//
//   npm ci && node run.mjs --n 1000 [--dir WORK_DIR] [--cap-secs 600] [--concurrency 100] [--keep]
//   node run.mjs --records records.json ...   (records made by `tessera-bench compare`)
// Prints a summary on stderr and `RESULT {json}` on stdout.

import { spawn } from "node:child_process"
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import { emit, intArg, loadRecords, parseArgs } from "./lib.mjs"

const here = dirname(fileURLToPath(import.meta.url))
const args = parseArgs()
const capSecs = intArg(args, "cap-secs", 600)
const concurrency = intArg(args, "concurrency", 100)
const work = args.dir ?? mkdtempSync(join(tmpdir(), "am-repo-bench-"))
mkdirSync(work, { recursive: true })
const log = msg => process.stderr.write(`[automerge-repo] ${msg}\n`)

let recordsFile = args.records
if (!recordsFile) {
  recordsFile = join(work, "records.json")
  writeFileSync(recordsFile, JSON.stringify(loadRecords(args)))
}

/** Runs a script; resolves with its RESULT (or null), last PROGRESS and exit status. */
function runScript(script, scriptArgs, hardCapMs) {
  return new Promise(resolve => {
    const child = spawn(process.execPath, [join(here, script), ...scriptArgs], { stdio: ["ignore", "pipe", "pipe"] })
    let out = ""
    let lastProgress = 0
    let lastPhase = ""
    let errTail = ""
    let killed = false
    child.stdout.on("data", d => (out += d))
    child.stderr.on("data", d => {
      for (const line of String(d).split("\n")) {
        const m = /^PROGRESS (\d+) ?(\w*)/.exec(line)
        if (m) [lastProgress, lastPhase] = [Number(m[1]), m[2]]
        else if (line.trim()) errTail = (errTail + line + "\n").slice(-2000)
      }
    })
    const timer = setTimeout(() => {
      killed = true
      child.kill("SIGKILL")
    }, hardCapMs)
    child.on("close", code => {
      clearTimeout(timer)
      const line = out.split("\n").find(l => l.startsWith("RESULT "))
      resolve({ result: line ? JSON.parse(line.slice(7)) : null, lastProgress, lastPhase, code, killed, errTail })
    })
  })
}

const zero = { bytes_in: 0, bytes_out: 0, messages_in: 0, messages_out: 0, connections: 0, documents: 0, rss: 0 }
let lastStats = zero
/** The server's counters; its last known ones if it died (reported as `server_exit`). */
async function stats(base) {
  try {
    lastStats = await (await fetch(`${base}/stats`)).json()
  } catch {
    // the server is gone: keep the last counters
  }
  return lastStats
}
const diff = (a, b) => ({
  bytes: b.bytes_in + b.bytes_out - a.bytes_in - a.bytes_out,
  bytes_in: b.bytes_in - a.bytes_in,
  bytes_out: b.bytes_out - a.bytes_out,
  messages: b.messages_in + b.messages_out - a.messages_in - a.messages_out,
  connections: b.connections - a.connections,
})

const server = spawn(process.execPath, [join(here, "server.mjs"), "--dir", join(work, "server")], {
  stdio: ["ignore", "pipe", "pipe"],
})
let serverExit = null
let serverErr = ""
server.stderr.on("data", d => (serverErr = (serverErr + d).slice(-1500)))
server.on("exit", code => (serverExit = `the sync server exited (${code}): ${serverErr.trim().split("\n").slice(0, 6).join(" | ")}`))
const port = await new Promise((resolve, reject) => {
  let buf = ""
  server.stdout.on("data", d => {
    buf += d
    const m = /LISTENING (\d+)/.exec(buf)
    if (m) resolve(Number(m[1]))
  })
  server.on("exit", code => reject(new Error(`the sync server exited (${code})`)))
})
const base = `http://127.0.0.1:${port}`
const url = `ws://127.0.0.1:${port}`
const out = { system: "automerge-repo", cap_secs: capSecs, concurrency }

try {
  const ids = join(work, "ids.json")
  const hardCap = (2 * capSecs + 120) * 1000 // create + push, each capped inside
  let before = await stats(base)
  const w = await runScript("writer.mjs", ["--url", url, "--dir", join(work, "writer"), "--ids-out", ids, "--records", recordsFile, "--cap-secs", String(capSecs)], hardCap)
  let after = await stats(base)
  const n = w.result?.n ?? JSON.parse(readFileSync(recordsFile, "utf8")).length
  out.n = n
  out.push = { ...diff(before, after), server_documents: after.documents, server_rss: after.rss }
  if (w.result) {
    out.create = { secs: w.result.create_secs, done: w.result.created, finished: w.result.create_finished }
    out.create_secs = w.result.create_secs
    out.push.secs = w.result.push_secs
    out.push.done = w.result.pushed
    out.push.finished = w.result.push_finished
  } else if (w.lastPhase === "create") {
    out.create = { secs: hardCap / 1e3, done: w.lastProgress, finished: false }
    out.push.finished = false
    out.push.done = 0
    out.push.error = "not started: the writer was still creating documents"
  } else {
    out.create = { finished: true }
    out.push.finished = false
    out.push.done = w.lastProgress
    out.push.error = w.killed ? "the writer stopped answering and was killed at the hard cap" : `writer exited ${w.code}: ${w.errTail}`
  }
  // The server writes what it holds to its storage (its saves are throttled).
  if (serverExit) out.server_exit = serverExit
  else {
    try {
      out.push.server_flush_secs = (await (await fetch(`${base}/flush`, { method: "POST" })).json()).secs
    } catch (e) {
      await new Promise(r => setTimeout(r, 500)) // let the exit event and stderr arrive
      out.server_exit = serverExit ?? `the sync server did not answer /flush: ${e.cause?.code ?? e.message}`
    }
  }
  log(`push: ${out.push.finished ? "finished" : `did not finish (${out.push.done} of ${n})`} ${out.push.secs === undefined ? "(never started: the writer was still creating documents)" : `in ${out.push.secs.toFixed(2)} s`}, ${out.push.bytes} B, ${out.push.connections} connection(s)`)

  if (out.push.done > 0 && !out.server_exit) {
    before = await stats(base)
    const r = await runScript("reader.mjs", ["--url", url, "--dir", join(work, "reader"), "--ids", ids, "--concurrency", String(concurrency), "--cap-secs", String(capSecs)], (capSecs + 120) * 1000)
    after = await stats(base)
    out.pull = diff(before, after)
    if (r.result) {
      out.pull.secs = r.result.pull_secs
      out.pull.find_secs = r.result.find_secs
      out.pull.done = r.result.arrived
      out.pull.unavailable = r.result.unavailable
      out.pull.wrong = r.result.wrong
      out.pull.finished = r.result.pull_finished
    } else {
      out.pull.finished = false
      out.pull.done = r.lastProgress
      out.pull.error = r.killed ? "the reader stopped answering and was killed at the hard cap" : `reader exited ${r.code}: ${r.errTail}`
    }
    log(`pull: ${out.pull.finished ? "finished" : `did not finish (${out.pull.done} of ${n})`} in ${out.pull.secs?.toFixed(2)} s, ${out.pull.bytes} B, ${out.pull.connections} connection(s)`)
  }
  if (serverExit) out.server_exit = serverExit
} finally {
  server.kill("SIGTERM")
  if (!args.keep) {
    for (const d of ["server", "writer", "reader"]) rmSync(join(work, d), { recursive: true, force: true })
  }
}
emit(out)
