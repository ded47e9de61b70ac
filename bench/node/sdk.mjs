// The one call every Node peer makes: a batch delete of up to 100 IPs with the official SDK
// (npm "cloudflare", pinned in bench/package.json). Credentials and base URL come from the
// environment (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL), as for cfrun.
//
// The SDK's bulkDelete({ zone_id }) has no parameter for the IP list, and 7.3.0 sends it to
// /zones/{zone_id}/origin/cloud_regions/batch, the newer API generation, which the fake (like
// cfrun, per the wire contract) does not serve. Both go through its request options: `body`
// carries the list and `path` the contract's endpoint. The SDK does everything else as usual
// (headers, retries, JSON, unwrapping `result`).
import Cloudflare from 'cloudflare';

const client = new Cloudflare();

// Resolves to the request's result; rejects unless every IP was deleted.
export async function bulkDelete(zone, ips) {
  const result = await client.cache.originCloudRegions.bulkDelete(
    { zone_id: zone },
    { path: `/zones/${zone}/cache/origin_cloud_regions/batch`, body: ips },
  );
  // This endpoint answers with the setting shape: { id, editable, modified_on, value }.
  const deleted = result.value.succeeded.length;
  if (deleted !== ips.length) {
    throw new Error(`zone ${zone}: ${deleted} of ${ips.length} IPs deleted`);
  }
  return result;
}
