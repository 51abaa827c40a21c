"""The lab's small topologies, built with `Topology`.

Addresses are private and exist only inside the namespaces: the client is
10.200.1.1 (interface c0), the server 10.200.1.2 (s0); MACs are fixed so captures
read the same on every run; neighbours are static (no ARP); offloads are off, so
every frame is one wire-sized segment with a complete checksum.
"""
from __future__ import annotations

from dataclasses import dataclass

from .topology import Topology

__all__ = ["Hosts", "two_hosts", "relayed", "CLIENT_IP", "SERVER_IP", "MAC_C", "MAC_S"]

CLIENT_IP, SERVER_IP = "10.200.1.1", "10.200.1.2"
MAC_C, MAC_S = "02:00:00:00:0c:01", "02:00:00:00:05:01"
MAC_MC, MAC_MS = "02:00:00:00:0d:01", "02:00:00:00:0d:02"


@dataclass(frozen=True)
class Hosts:
    client: str  #: namespace
    server: str  #: namespace
    middle: str | None = None  #: the relay's namespace (relayed only)
    client_ip: str = CLIENT_IP
    server_ip: str = SERVER_IP
    client_if: str = "c0"
    server_if: str = "s0"


def two_hosts(topo: Topology, client_role: str = "client", server_role: str = "server",
              ) -> Hosts:
    """client (c0, 10.200.1.1) ── veth ── server (s0, 10.200.1.2)."""
    c, s = topo.netns(client_role), topo.netns(server_role)
    quiet_ipv6(topo, c, s)
    topo.veth(c, "c0", s, "s0", addr_a=f"{CLIENT_IP}/24", addr_b=f"{SERVER_IP}/24",
              mac_a=MAC_C, mac_b=MAC_S)
    return Hosts(c, s)


def relayed(topo: Topology) -> Hosts:
    """client (c0) ── mc [relay in M] ms ── server (s0): one Ethernet segment with a relay.

    The relay (relay.Relay, run in a thread inside M) forwards frames between mc and
    ms; client and server see each other as direct neighbours.
    """
    c, m, s = topo.netns("client"), topo.netns("relay"), topo.netns("server")
    quiet_ipv6(topo, c, m, s)
    topo.bare_veth(c, "c0", m, "mc", mac_a=MAC_C, mac_b=MAC_MC)
    topo.bare_veth(m, "ms", s, "s0", mac_a=MAC_MS, mac_b=MAC_S)
    topo.addr(c, "c0", f"{CLIENT_IP}/24")
    topo.addr(s, "s0", f"{SERVER_IP}/24")
    topo.neigh(c, SERVER_IP, MAC_S, "c0")
    topo.neigh(s, CLIENT_IP, MAC_C, "s0")
    return Hosts(c, s, m)


def quiet_ipv6(topo: Topology, *namespaces: str) -> None:
    """IPv6 off before any link exists: no router solicitations or DAD on the wire."""
    for ns in namespaces:
        topo.sysctl(ns, "net.ipv6.conf.all.disable_ipv6", 1)
        topo.sysctl(ns, "net.ipv6.conf.default.disable_ipv6", 1)
