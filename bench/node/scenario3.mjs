// Scenarios 2 and 3 with the official SDK: a pool of CONCURRENCY workers takes the requests
// (a zone and a batch of 100 of its IPs) from one queue, in order. With CONCURRENCY 1 it is
// scenario 2's sequential run.
// usage: node bench/node/scenario3.mjs CONCURRENCY ZONE_ID IP_FILE [ZONE_ID IP_FILE ...]
import { readFileSync } from 'node:fs';
import { bulkDelete } from './sdk.mjs';

const BATCH = 100; // the API's limit per request

const [concurrency, ...pairs] = process.argv.slice(2);
const queue = [];
for (let i = 0; i < pairs.length; i += 2) {
  const ips = readFileSync(pairs[i + 1], 'utf8').split('\n').filter(Boolean);
  for (let j = 0; j < ips.length; j += BATCH) queue.push([pairs[i], ips.slice(j, j + BATCH)]);
}

let next = 0;
async function worker() {
  while (next < queue.length) {
    const [zone, ips] = queue[next++];
    await bulkDelete(zone, ips);
  }
}
await Promise.all(Array.from({ length: Number(concurrency) }, worker));
