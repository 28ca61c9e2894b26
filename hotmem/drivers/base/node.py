"""NUMA node devices (drivers/base/node.c, Linux 6.1): /sys/devices/system/node/nodeN."""
from __future__ import annotations


def register_one_node(m, nid: int) -> None:
    """drivers/base/node.c:__register_one_node (6.1): the node's sysfs directory appears."""
    m.pgdats[nid].online = True
