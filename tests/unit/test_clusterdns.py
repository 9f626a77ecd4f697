"""hack/clusterdns.py, the local node's DNS stand-in: the names pods look up and the answers they get."""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "hack"))

import clusterdns


def service(name: str, ns: str, cluster_ip: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns}, "spec": {"clusterIP": cluster_ip, **spec}}


def endpoint_slice(svc: str, ns: str, *endpoints: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {"name": f"{svc}-abc", "namespace": ns, "labels": {"kubernetes.io/service-name": svc}},
        "addressType": "IPv4",
        "endpoints": list(endpoints),
    }


def query(name: str, qtype: int = clusterdns.TYPE_A) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\0" + struct.pack("!HH", qtype, 1)


def addresses(reply: bytes) -> tuple[int, list[str]]:
    """(rcode, A addresses) of a reply to a query made by ``query``."""
    flags, _, ancount = struct.unpack("!HHH", reply[2:8])
    end = reply.index(b"\0", 12) + 5
    found = []
    for _ in range(ancount):
        found.append(socket.inet_ntoa(reply[end + 12 : end + 16]))
        end += 16
    return flags & 0x000F, found


RECORDS = clusterdns.records_from(
    [
        service("time", "team", "10.96.4.7"),
        service("time-server", "team", "None"),
        service("web", "other", "None", publishNotReadyAddresses=True),
    ],
    [
        endpoint_slice(
            "time-server",
            "team",
            {"addresses": ["10.244.0.9"], "hostname": "time-server-0", "conditions": {"ready": True}},
            {"addresses": ["10.244.0.10"], "conditions": {"ready": False}},
        ),
        endpoint_slice("web", "other", {"addresses": ["10.244.0.11"], "conditions": {"ready": False}}),
    ],
)


def test_cluster_ip_service_answers_its_cluster_ip() -> None:
    reply = clusterdns.answer(query("time.team.svc.cluster.local"), RECORDS)
    assert reply[:2] == b"\x12\x34"
    assert addresses(reply) == (0, ["10.96.4.7"])


def test_headless_service_answers_its_ready_pods_and_their_hostnames() -> None:
    assert addresses(clusterdns.answer(query("time-server.team.svc.cluster.local"), RECORDS)) == (
        0,
        ["10.244.0.9"],
    )
    hostname = "time-server-0.time-server.team.svc.cluster.local"
    assert addresses(clusterdns.answer(query(hostname), RECORDS)) == (0, ["10.244.0.9"])
    # publishNotReadyAddresses: not-ready pods are published too
    assert addresses(clusterdns.answer(query("web.other.svc.cluster.local"), RECORDS)) == (0, ["10.244.0.11"])


def test_unknown_name_is_nxdomain_and_other_types_of_a_known_name_are_empty() -> None:
    assert addresses(clusterdns.answer(query("nope.team.svc.cluster.local"), RECORDS)) == (3, [])
    aaaa = 28
    assert addresses(clusterdns.answer(query("time.team.svc.cluster.local", aaaa), RECORDS)) == (0, [])


def test_malformed_query_gets_format_error() -> None:
    reply = clusterdns.answer(b"\x00\x07\x01", RECORDS)
    assert struct.unpack("!HH", reply[:4]) == (7, 0x8000 | clusterdns.RCODE_FORMERR)
