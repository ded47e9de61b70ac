"""Scenario 1 (cold start) in plain Python 3: one batch delete of the IPs given, with nothing
but the standard library. Exits non-zero unless every IP was deleted.

usage: python3 bench/python/one.py ZONE_ID IP...  (CLOUDFLARE_API_TOKEN, CLOUDFLARE_BASE_URL)
"""
import json
import os
import sys
import urllib.request

zone, ips = sys.argv[1], sys.argv[2:]
request = urllib.request.Request(
    f"{os.environ['CLOUDFLARE_BASE_URL']}/zones/{zone}/origin/cloud_regions/batch",
    data=json.dumps(ips).encode(),
    method="DELETE",
    headers={
        "Authorization": "Bearer " + os.environ["CLOUDFLARE_API_TOKEN"],
        "Content-Type": "application/json",
    },
)
with urllib.request.urlopen(request) as response:
    deleted = json.load(response)["result"]["succeeded"]  # v2: no setting wrapper
sys.exit(0 if len(deleted) == len(ips) else 1)
