// The one call every Node peer makes: a batch delete of up to 100 IPs with the official SDK
// (npm "cloudflare", pinned in bench/package.json). Credentials and base URL come from the
// environment (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL), as for cfrun.
//
// The SDK's bulkDelete({ zone_id }) has no parameter for the IP list: `body` in its request
// options carries it. 7.3.0 sends the call to /zones/{zone_id}/origin/cloud_regions/batch, the
// current API generation, which cfrun and the fake use too. The SDK does everything else as
// usual (headers, retries, JSON, unwrapping `result`).
import Cloudflare from 'cloudflare';

const client = new Cloudflare();

// Resolves to the request's result; rejects unless every IP was deleted.
export async function bulkDelete(zone, ips) {
  const result = await client.cache.originCloudRegions.bulkDelete({ zone_id: zone }, { body: ips });
  // v2 answers { succeeded, failed } as the result itself (no setting wrapper).
  const deleted = result.succeeded.length;
  if (deleted !== ips.length) {
    throw new Error(`zone ${zone}: ${deleted} of ${ips.length} IPs deleted`);
  }
  return result;
}
