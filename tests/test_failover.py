"""The cluster profile (deploy/cluster) under a bounded rush: the leader's postgres killed, then a switchover.

Buyers get 503 with Retry-After while writes are refused, never a 500; every
order a buyer saw confirmed is on the new primary; no charge lacks its order;
the invariant checker finds nothing. About two minutes (96 s measured): the cluster's start
(etcd, two Patroni nodes, HAProxy, PgBouncer, two app hosts, the workers and
nginx) is most of it. Runs only as root with Debian's packages installed,
and says which are missing otherwise. tests/load/failover.py runs more
rounds, and with an asynchronous standby, for docs/performance.md.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.load import failover

MISSING = failover.cluster_tool.missing_packages()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(bool(MISSING), reason=f"needs Debian's packages: apt-get install {' '.join(MISSING)}"),
    pytest.mark.skipif(os.geteuid() != 0, reason="starts each part as its own unprivileged user, which needs root"),
]


@pytest.fixture(scope="module")
def cluster():
    run_dir = Path("/tmp/tb-failover-test")
    shutil.rmtree(run_dir, ignore_errors=True)
    runner = failover.cluster_tool.Runner(run_dir, 27000, synchronous=True, settings=failover.SETTINGS)
    try:
        yield runner.up().describe()
    finally:
        runner.down()
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.mark.parametrize("fault", ["failover", "switchover"])
def test_a_fault_under_load_loses_no_confirmed_order_and_answers_503_not_500(cluster, fault):
    outcome = failover.run_fault(cluster, fault)
    print("\n" + outcome.line())
    assert outcome.confirmed > 0
    assert 500 not in outcome.answers and 502 not in outcome.answers and 504 not in outcome.answers
    assert set(outcome.answers) <= {201, 402, 409, 503}, outcome.answers
    if 503 in outcome.answers:
        assert outcome.max_retry_after > 0
    assert outcome.missing_orders == []
    assert outcome.charges_without_order == 0 and outcome.pending_left == 0
    assert outcome.violations == []
    assert outcome.refused_seconds < 60
    # Both nodes back: one leads, the other streams to it as its synchronous standby; after a switchover
    # the old primary is that standby.
    assert outcome.standby_back and outcome.leader_after
    if fault == "switchover":
        assert outcome.leader_after != outcome.struck_node
    # The waiting room's line went on moving once the database was back, and its crowd got no 500.
    assert outcome.room_served_after > outcome.room_served_before
    assert set(outcome.room_answers) <= {200, 503}, outcome.room_answers
