// Scenario 1 (cold start) with the official SDK: one process deletes the IPs given.
// usage: node bench/node/one.mjs ZONE_ID IP...
import { bulkDelete } from './sdk.mjs';

const [zone, ...ips] = process.argv.slice(2);
await bulkDelete(zone, ips);
