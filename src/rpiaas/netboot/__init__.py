"""Network boot of the testbed's Pis: dnsmasq (DHCP, DNS, TFTP), NFS roots, from the cluster config."""

from __future__ import annotations

from .plan import NetbootError, NetbootPlan, NodeBoot, Subnet, make_plan

__all__ = ["NetbootError", "NetbootPlan", "NodeBoot", "Subnet", "make_plan"]
