// The writing peer: creates one automerge-repo document per attendee record (as an
// app would: repo.create), saves them to its nodefs storage, then connects to the sync
// server and waits until the server holds every document at the writer's heads (asked
// over the server's HTTP side: POST /have, which the official server does not have).
//
// node writer.mjs --url ws://127.0.0.1:PORT --dir DATA_DIR --ids-out FILE
//                 [--records FILE.json | --n N] [--cap-secs 600]
// Prints `RESULT {json}`: per phase seconds, and how many documents got through.

import { writeFileSync } from "node:fs"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { emit, intArg, loadRecords, parseArgs, progress, waitUntil } from "./lib.mjs"

const args = parseArgs()
const capMs = intArg(args, "cap-secs", 600) * 1000
const records = loadRecords(args)
const n = records.length
const result = { n, created: 0, pushed: 0 }

const repo = new Repo({ storage: new NodeFSStorageAdapter(args.dir), network: [] })

// Phase 1: create and save locally (no network yet, as a hub working offline).
let t = performance.now()
const handles = []
for (const record of records) {
  if (handles.length % 100 === 0) {
    progress(handles.length, "create")
    if (performance.now() - t > capMs) break
  }
  handles.push(repo.create(record))
}
await repo.flush()
result.created = handles.length
result.create_secs = (performance.now() - t) / 1e3
result.create_finished = handles.length === n
writeFileSync(args["ids-out"], JSON.stringify(handles.map((h, i) => ({ url: h.url, given_name: records[i].given_name }))))

// Phase 2: connect to the sync server and wait until it holds every document created
// (all N unless creation hit the cap) at the writer's heads (asked over the server's HTTP side, in chunks, pending ones only).
t = performance.now()
repo.networkSubsystem.addNetworkAdapter(new WebSocketClientAdapter(args.url))
const have = new URL(args.url.replace(/^ws/, "http"))
have.pathname = "/have"
let pending = handles
let lastReport = 0
const done = await waitUntil(
  async () => {
    const still = []
    for (let i = 0; i < pending.length; i += 1000) {
      const chunk = pending.slice(i, i + 1000)
      const asked = JSON.stringify(chunk.map(h => [h.documentId, h.heads()]))
      const held = new Set((await (await fetch(have, { method: "POST", body: asked })).json()).held)
      for (const h of chunk) if (!held.has(h.documentId)) still.push(h)
    }
    pending = still
    result.pushed = handles.length - pending.length
    if (Date.now() - lastReport > 1000) {
      progress(result.pushed)
      lastReport = Date.now()
    }
    return pending.length === 0
  },
  capMs,
  250,
)
result.push_secs = (performance.now() - t) / 1e3
result.push_finished = done && handles.length === n
progress(result.pushed)
emit(result)
process.exit(0)
