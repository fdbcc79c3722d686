"""Runs scim2-tester (https://pypi.org/project/scim2-tester/) against a SCIM server.

Usage: scim2_tester_check.py --url BASE --token TOKEN

Prints one JSON object per line for every check: its title, resource type, status name,
tags and reason. The caller decides which statuses pass; this script only reports.
"""

import argparse
import json
import sys

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import check_server


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    http = httpx2.Client(
        base_url=args.url,
        headers={"Authorization": f"Bearer {args.token}"},
        timeout=30,
    )
    client = SyncSCIMClient(http)
    results = check_server(client)
    for r in results:
        print(
            json.dumps(
                {
                    "title": r.title,
                    "resource_type": r.resource_type,
                    "status": r.status.name,
                    "tags": sorted(r.tags or []),
                    "reason": r.reason,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
