# SPDX-License-Identifier: Apache-2.0
"""The MongoDB e2e tests' stack: the replica-set simulator with a fixed commit
delay and an exporter watching dag.transactions, its state kept across
restarts (test_mongodb_sim, test_mongodb_streams)."""
import mongoexp
import mongosim
import pohtest
from mongoexp import TX_STREAM

COMMIT_DELAY_MS = 37


class Stack:
    """Simulator + exporter watching dag.transactions, state kept across restarts."""

    def __init__(self, *sim_args, streams=(TX_STREAM,), extra_clusters=()):
        self.sim = mongosim.MongoSim("--commit-delay-ms", str(COMMIT_DELAY_MS), *sim_args).start()
        self.state = mongoexp.StateDir()
        self.clusters = [{"name": "main", "uri": self.sim.uri, "streams": list(streams)}]
        self.clusters += list(extra_clusters)
        self.exp = None

    def start_exporter(self):
        self.exp = pohtest.Exporter(mongoexp.config(self.clusters, self.state.path))
        return self.exp

    def produced(self, op="insert"):
        return self.sim.counts()["ns"].get("dag.transactions", {}).get(op, 0)

    def close(self):
        try:
            if self.exp:
                mongoexp.stop_checked(self.exp)
        finally:
            self.sim.stop()
            self.state.cleanup()
