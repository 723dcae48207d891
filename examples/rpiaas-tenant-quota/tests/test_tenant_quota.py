"""Tests of the tenant_quota policy: the control plane driven by hand, then a simulated run."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from rpiaas_tenant_quota import TenantQuota

from rpiaas import PROFILES, ControlPlane, Node, Reject, Start, Task, TaskArrived, TaskFinished
from rpiaas.policy import PolicyParamError

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "three-tenants.yaml"


def pis(n: int) -> list[Node]:
    return [Node(i, f"node{i}", "lab.test", PROFILES["rpi4b"]) for i in range(n)]


def task(tid: int, tenant: str, cores: int = 2, at: float = 0.0) -> Task:
    return Task(tid, at, cores, 256, 60.0 * cores, tenant=tenant)


def started(actions: list[object]) -> dict[int, int]:
    """Task id -> node of the Start actions."""
    return {a.task.id: a.node for a in actions if isinstance(a, Start)}


def test_a_tenant_at_quota_waits_without_blocking_the_others() -> None:
    cp = ControlPlane(pis(2), [TenantQuota(max_cores_per_tenant=4)])
    batch = [TaskArrived(task(1, "a")), TaskArrived(task(2, "a")), TaskArrived(task(3, "a")),
             TaskArrived(task(4, "b"))]
    # all four in one batch: the quota must count the starts of this very pass
    assert set(started(cp.step(0.0, batch))) == {1, 2, 4}
    assert [t.id for t in cp.queued()] == [3]
    # a's task waits for a's own task to end, not for room
    assert started(cp.step(30.0, [TaskFinished(4)])) == {}
    assert started(cp.step(60.0, [TaskFinished(1)])) == {3: 0}


@pytest.mark.parametrize(("affinity", "node"), [(True, 0), (False, 1)])
def test_affinity_before_packing(affinity: bool, node: int) -> None:
    cp = ControlPlane(pis(3), [TenantQuota(max_cores_per_tenant=8, affinity=affinity)])
    placed = started(cp.step(0.0, [TaskArrived(task(1, "a", cores=1)),
                                   TaskArrived(task(2, "z", cores=3)),
                                   TaskArrived(task(3, "z", cores=3))]))
    assert placed == {1: 0, 2: 0, 3: 1}  # packed
    cp.step(1.0, [TaskFinished(2)])
    # node 0 runs a's task with 3 cores free, node 1 has 1 core free:
    # affinity goes back to a's node, packing fills node 1
    assert started(cp.step(2.0, [TaskArrived(task(4, "a", cores=1, at=2.0))])) == {4: node}


def test_a_task_wider_than_the_quota_is_rejected() -> None:
    cp = ControlPlane(pis(1), [TenantQuota(max_cores_per_tenant=2, quotas={"big": 4})])
    actions = cp.step(0.0, [TaskArrived(task(1, "a", cores=3)), TaskArrived(task(2, "big", cores=3))])
    rejected = [a for a in actions if isinstance(a, Reject)]
    assert [a.task.id for a in rejected] == [1]
    assert "quota of 2" in rejected[0].reason
    assert started(actions) == {2: 0}


@pytest.mark.parametrize(("params", "key", "words"), [
    ({"max_cores_per_tenant": "eight"}, "max_cores_per_tenant", "expected int"),
    ({"max_cores_per_tenant": 0}, None, "at least 1 core"),
    ({"quotas": {"web": -1}}, None, "'web'"),
    ({"quotas": [1, 2]}, None, "mapping"),
    ({"max_cores": 4}, "max_cores", "unknown parameter"),
])
def test_bad_parameters_are_named(params: dict[str, object], key: str | None, words: str) -> None:
    with pytest.raises(PolicyParamError) as err:
        TenantQuota.create(params)
    assert words in err.value.message
    if key is not None:
        assert err.value.key == key


def test_no_tenant_exceeds_its_quota_in_a_simulated_run(tmp_path: Path) -> None:
    from rpiaas import load_scenario
    from rpiaas.sim import simulate

    scenario = load_scenario(SCENARIO)
    assert scenario.policy.name == "tenant_quota"
    summary, run = simulate(scenario, tmp_path / "run")
    assert run is not None
    params = scenario.policy.params
    tenants = {t["id"]: t["tenant"] for t in yaml.safe_load(SCENARIO.read_text())["workload"]["tasks"]}
    changes = []
    with open(run / "tasks.csv", newline="") as f:
        for row in csv.DictReader(f):
            if row["start_s"]:
                tenant, cores = tenants[int(row["task_id"])], int(row["cores"])
                # at equal times ends come first: the control plane frees before it starts
                changes += [(float(row["start_s"]), 1, tenant, cores),
                            (float(row["end_s"]), 0, tenant, -cores)]
    running: dict[str, int] = {}
    peak: dict[str, int] = {}
    for _, _, tenant, delta in sorted(changes):
        running[tenant] = running.get(tenant, 0) + delta
        peak[tenant] = max(peak.get(tenant, 0), running[tenant])
    quota = {t: params["quotas"].get(t, params["max_cores_per_tenant"]) for t in peak}
    assert all(peak[t] <= quota[t] for t in peak), (peak, quota)
    assert peak["batch"] == quota["batch"]  # the quota was reached, so it was tested
    assert summary["rejected"] == 1
