// The fresh peer: an empty repo with nodefs storage connects to the sync server and
// loads every document id it is given (repo.find, at most --concurrency at once), checks
// each one's content, then saves them all to its storage.
//
// node reader.mjs --url ws://127.0.0.1:PORT --dir DATA_DIR --ids FILE
//                 [--concurrency 100] [--cap-secs 600]
// Prints `RESULT {json}`: seconds, and how many documents arrived intact.

import { readFileSync } from "node:fs"
import { Repo } from "@automerge/automerge-repo"
import { WebSocketClientAdapter } from "@automerge/automerge-repo-network-websocket"
import { NodeFSStorageAdapter } from "@automerge/automerge-repo-storage-nodefs"
import { emit, intArg, parseArgs, progress } from "./lib.mjs"

const args = parseArgs()
const capMs = intArg(args, "cap-secs", 600) * 1000
const concurrency = Math.max(1, intArg(args, "concurrency", 100))
const ids = JSON.parse(readFileSync(args.ids, "utf8"))
const result = { n: ids.length, arrived: 0, unavailable: 0, wrong: 0, concurrency }

const t = performance.now()
const deadline = Date.now() + capMs
const repo = new Repo({ storage: new NodeFSStorageAdapter(args.dir), network: [new WebSocketClientAdapter(args.url)] })
const controller = new AbortController()
const timer = setTimeout(() => controller.abort(), capMs)
let next = 0
let lastReport = 0
async function worker() {
  while (next < ids.length && !controller.signal.aborted) {
    const { url, given_name } = ids[next++]
    try {
      const handle = await repo.find(url, { signal: controller.signal })
      if (handle.doc()?.given_name === given_name) result.arrived += 1
      else result.wrong += 1
    } catch (e) {
      if (controller.signal.aborted) return
      result.unavailable += 1
    }
    if (Date.now() - lastReport > 1000) {
      progress(result.arrived)
      lastReport = Date.now()
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker))
clearTimeout(timer)
result.find_secs = (performance.now() - t) / 1e3
if (Date.now() < deadline) await repo.flush()
result.pull_secs = (performance.now() - t) / 1e3
result.pull_finished = !controller.signal.aborted && result.arrived === ids.length
progress(result.arrived)
emit(result)
process.exit(0)
