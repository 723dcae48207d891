"""Per-tenant core quotas: no tenant runs more than its share of cores at once.

Shared clusters give every tenant a quota so that one tenant's burst cannot
take every node and starve the others.  :class:`TenantQuota` enforces one:

- ``rpiaas_admit`` rejects a task wider than its tenant's quota (it could
  never start);
- ``rpiaas_filter`` masks every node for a task whose tenant would go over
  its quota by starting it;
- ``rpiaas_blocked`` answers :data:`~rpiaas.policy.SKIP` for such a task, so
  the tasks queued behind it (other tenants') may still start;
- ``rpiaas_score`` prefers the nodes already running the tenant's tasks,
  then the fullest nodes (packing).

The cores a tenant runs are counted from ``view.running(node)`` at every
decision, not kept up to date from ``rpiaas_notify``: notifications carry
events (arrivals, finishes, failures, node failures), not the control plane's
own actions, so a counter fed by them would miss every start, kill and
migration -- including the starts made earlier in the same scheduling pass.
The view is the control plane's own bookkeeping, right after each start.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from rpiaas import SKIP, ClusterView, Policy, Reservation, Task, hookimpl
from rpiaas.policy import PolicyParamError

NAME = "tenant_quota"


class TenantQuota(Policy):
    """Cap the cores each tenant runs at once; a tenant at its quota waits without blocking others.

    Tasks without a tenant all belong to the tenant ``""``, which has a quota
    like any other.

    :param max_cores_per_tenant: cores a tenant may run at once.
    :param quotas: per-tenant overrides of ``max_cores_per_tenant``, as
        ``{tenant: cores}``.
    :param affinity: prefer nodes already running the tenant's tasks before
        packing; with ``false`` just pack (fewest free cores first).
    """

    NAME = NAME

    def __init__(self, max_cores_per_tenant: int = 8, quotas: Mapping[str, int] | None = None,
                 affinity: bool = True) -> None:
        if max_cores_per_tenant < 1:
            raise PolicyParamError("max_cores_per_tenant",
                                   f"expected at least 1 core, got {max_cores_per_tenant}")
        checked: dict[str, int] = {}
        if quotas is not None:
            if not isinstance(quotas, Mapping):
                raise PolicyParamError("quotas", f"expected a mapping of tenant to cores, got {quotas!r}")
            for tenant, cores in quotas.items():
                if isinstance(cores, bool) or not isinstance(cores, int) or cores < 1:
                    raise PolicyParamError("quotas", f"tenant {tenant!r}: expected at least 1 core, "
                                                     f"got {cores!r}")
                checked[str(tenant)] = cores
        self.max_cores_per_tenant = max_cores_per_tenant
        self.quotas = checked
        self.affinity = affinity

    def quota(self, tenant: str) -> int:
        """The cores ``tenant`` may run at once."""
        return self.quotas.get(tenant, self.max_cores_per_tenant)

    @staticmethod
    def tenant_cores(tenant: str, view: ClusterView) -> npt.NDArray[np.int64]:
        """Cores ``tenant``'s running tasks hold, per node."""
        held = np.zeros(len(view), dtype=np.int64)
        for node in np.flatnonzero(view.tasks).tolist():
            held[node] = sum(t.cores for t in view.running(node).values() if t.tenant == tenant)
        return held

    def _over_quota(self, task: Task, view: ClusterView) -> bool:
        return int(self.tenant_cores(task.tenant, view).sum()) + task.cores > self.quota(task.tenant)

    # ------------------------------------------------------------ hooks
    @hookimpl
    def rpiaas_admit(self, task: Task, view: ClusterView) -> str | None:
        quota = self.quota(task.tenant)
        if task.cores > quota:
            return f"asks for {task.cores} cores, over tenant {task.tenant!r}'s quota of {quota}"
        return None

    @hookimpl
    def rpiaas_filter(self, task: Task, view: ClusterView) -> npt.NDArray[np.bool_] | None:
        if self._over_quota(task, view):
            return np.zeros(len(view), dtype=bool)
        return None  # no opinion: any node with room will do

    @hookimpl
    def rpiaas_score(self, task: Task, view: ClusterView) -> npt.NDArray[np.float64]:
        # packing term in (0, 1) for nodes with room: fuller is better
        pack = 1.0 - view.cores_free / (float(view.cores.max()) + 1.0)
        if not self.affinity:
            return pack
        # whole cores of the tenant's dominate the packing term
        return self.tenant_cores(task.tenant, view) + pack

    @hookimpl
    def rpiaas_blocked(self, task: Task, view: ClusterView, now: float,
                       reservation: Reservation | None) -> Any:
        if self._over_quota(task, view):
            return SKIP  # waiting for its own tenant's tasks; let the others pass
        return None  # out of room: leave it to other policies (default: strict order)
