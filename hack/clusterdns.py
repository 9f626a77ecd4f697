"""Cluster DNS stand-in for the local node: A records for ``<svc>.<ns>.svc.cluster.local``.

A ClusterIP Service answers with its ClusterIP; a headless Service with the ready addresses of its
EndpointSlices, and ``<hostname>.<svc>.<ns>.svc.cluster.local`` (StatefulSet pods) with that endpoint's
address. The records are rebuilt from the API every second. Names outside the cluster domain get
NXDOMAIN: the node has no upstream resolver to forward to. No CoreDNS package exists in Debian, so this
small server of the project's own stands in for it (UDP only; answers are small).

    python3 hack/clusterdns.py --server URL --token-file F --ca-file F --listen 10.244.0.1:53
"""

from __future__ import annotations

import argparse
import socket
import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubeapi import Api, ApiError

DOMAIN = "cluster.local"
TYPE_A = 1
CLASS_IN = 1
RCODE_NXDOMAIN = 3
RCODE_FORMERR = 1
TTL_SECONDS = 5


def records_from(services: list[dict[str, Any]], slices: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Name -> IPv4 addresses for every Service (and headless endpoint hostname) in the lists."""
    records: dict[str, list[str]] = {}
    headless: dict[tuple[str, str], bool] = {}
    for svc in services:
        meta, spec = svc["metadata"], svc.get("spec", {})
        name = f"{meta['name']}.{meta['namespace']}.svc.{DOMAIN}"
        cluster_ip = spec.get("clusterIP") or ""
        if cluster_ip and cluster_ip != "None":
            records[name] = [cluster_ip]
        elif spec.get("type") != "ExternalName":
            headless[(meta["namespace"], meta["name"])] = bool(spec.get("publishNotReadyAddresses"))
    for eps in slices:
        meta = eps["metadata"]
        owner = meta.get("labels", {}).get("kubernetes.io/service-name", "")
        key = (meta["namespace"], owner)
        if key not in headless or eps.get("addressType") != "IPv4":
            continue
        service_name = f"{owner}.{meta['namespace']}.svc.{DOMAIN}"
        for endpoint in eps.get("endpoints") or []:
            if endpoint.get("conditions", {}).get("ready") is False and not headless[key]:
                continue
            addresses = list(endpoint.get("addresses") or [])
            records.setdefault(service_name, []).extend(addresses)
            if endpoint.get("hostname"):
                records.setdefault(f"{endpoint['hostname']}.{service_name}", []).extend(addresses)
    return records


def parse_question(packet: bytes) -> tuple[int, int, str, int, int] | None:
    """(id, flags, name, qtype, end offset of the question) of a query, or None if it is malformed."""
    if len(packet) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", packet[:6])
    if qdcount != 1:
        return None
    labels, offset = [], 12
    while offset < len(packet):
        length = packet[offset]
        offset += 1
        if length == 0:
            break
        if length > 63 or offset + length > len(packet):
            return None
        labels.append(packet[offset : offset + length].decode("ascii", errors="replace"))
        offset += length
    if offset + 4 > len(packet):
        return None
    qtype = struct.unpack("!H", packet[offset : offset + 2])[0]
    return ident, flags, ".".join(labels).lower(), qtype, offset + 4


def answer(packet: bytes, records: dict[str, list[str]]) -> bytes:
    """The response to one query: A records for a known name, NXDOMAIN for an unknown one."""
    question = parse_question(packet)
    if question is None:
        ident = struct.unpack("!H", packet[:2])[0] if len(packet) >= 2 else 0
        return struct.pack("!HHHHHH", ident, 0x8000 | RCODE_FORMERR, 0, 0, 0, 0)
    ident, flags, name, qtype, end = question
    addresses = records.get(name.rstrip("."))
    rcode = RCODE_NXDOMAIN if addresses is None else 0
    found = addresses if addresses is not None and qtype == TYPE_A else []
    # QR, opcode and RD copied, AA and RA set: the answer is authoritative for the cluster domain.
    reply_flags = 0x8000 | (flags & 0x7900) | 0x0400 | 0x0080 | rcode
    header = struct.pack("!HHHHHH", ident, reply_flags, 1, len(found), 0, 0)
    body = packet[12:end]
    for ip in found:
        body += struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL_SECONDS, 4) + socket.inet_aton(ip)
    return header + body


class Records:
    """The current records, replaced as a whole by the refresher thread."""

    def __init__(self) -> None:
        self.current: dict[str, list[str]] = {}

    def refresh_forever(self, api: Api, interval: float) -> None:
        while True:
            try:
                services = api.get("/api/v1/services")["items"]
                slices = api.get("/apis/discovery.k8s.io/v1beta1/endpointslices")["items"]
                self.current = records_from(services, slices)
            except (ApiError, KeyError) as exc:
                print(f"clusterdns: refresh failed, keeping the last records: {exc}", file=sys.stderr)
            time.sleep(interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--token-file", type=Path, required=True)
    parser.add_argument("--ca-file", type=Path, required=True)
    parser.add_argument("--listen", required=True, help="ADDRESS:PORT")
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    host, _, port = args.listen.rpartition(":")
    api = Api.from_files(args.server, args.token_file, args.ca_file)
    records = Records()
    threading.Thread(target=records.refresh_forever, args=(api, args.interval), daemon=True).start()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    print(f"clusterdns: answering for {DOMAIN} on {args.listen}", file=sys.stderr, flush=True)
    while True:
        packet, client = sock.recvfrom(512)
        sock.sendto(answer(packet, records.current), client)


if __name__ == "__main__":
    sys.exit(main())
