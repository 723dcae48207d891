"""rpiaas-tenant-quota: a per-tenant core quota policy for rpiaas.

Installed, it registers :class:`TenantQuota` under the entry-point group
``rpiaas.policies``; scenarios select it with ``policy: tenant_quota``.
"""

from __future__ import annotations

from .policy import NAME, TenantQuota

__all__ = ["NAME", "TenantQuota"]
