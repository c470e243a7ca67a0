# SPDX-License-Identifier: Apache-2.0
"""Export retries against otlp_sink's injected faults: only the OTLP-retryable
codes are retried (RESOURCE_EXHAUSTED only with RetryInfo, whose delay is
honoured), with capped exponential backoff and a bounded total; spans are
delivered exactly once; partial_success counts rejected spans as dropped."""
import unittest

from otlpsink import Sink, emit
from pohtest import main

FAST = ("--retry-initial-ms", "50", "--retry-max-ms", "200", "--retry-max-elapsed-ms", "5000",
        "--export-timeout-ms", "3000", "--batch-timeout-ms", "50")

RETRYABLE = ["CANCELLED", "DEADLINE_EXCEEDED", "ABORTED", "OUT_OF_RANGE", "UNAVAILABLE",
             "DATA_LOSS"]
NOT_RETRYABLE = ["UNKNOWN", "INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS",
                 "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
                 "UNIMPLEMENTED", "INTERNAL", "UNAUTHENTICATED"]


def tree(sink, *extra):
    return emit("--scenario", "tree", "--child-ms", "0", *FAST, *extra, endpoint=sink.endpoint)


class RetryTest(unittest.TestCase):
    def test_unavailable_three_times_then_delivered_once(self):
        with Sink("--fail-unavailable", 3) as sink:
            run = tree(sink)
        reqs = sink.requests()
        self.assertEqual([r["status"] for r in reqs], ["UNAVAILABLE"] * 3 + ["OK"])
        self.assertTrue(all(r["spans"] == 4 for r in reqs))  # the same batch each time
        self.assertEqual(len(sink.spans()), 4)               # delivered exactly once
        self.assertEqual(run.stats["exported"], 4)
        self.assertEqual(run.stats["calls"], 4)
        self.assertEqual(run.stats["retries"], 3)
        self.assertEqual(sum(run.stats["dropped"].values()), 0)

    def test_retryable_codes(self):
        for code in RETRYABLE:
            with self.subTest(code=code):
                with Sink("--fail-code", code, "--fail-count", 1) as sink:
                    run = tree(sink)
                self.assertEqual([r["status"] for r in sink.requests()], [code, "OK"])
                self.assertEqual(run.stats["exported"], 4)
                self.assertEqual(run.stats["retries"], 1)

    def test_not_retryable_codes(self):
        for code in NOT_RETRYABLE:
            with self.subTest(code=code):
                with Sink("--fail-code", code, "--fail-count", 1) as sink:
                    run = tree(sink)
                self.assertEqual([r["status"] for r in sink.requests()], [code])
                self.assertEqual(run.stats["exported"], 0)
                self.assertEqual(run.stats["retries"], 0)
                self.assertEqual(run.stats["dropped"]["export_failed"], 4)
                self.assertEqual(sink.spans(), [])

    def test_resource_exhausted_with_retry_info_waits_as_told(self):
        with Sink("--fail-code", "RESOURCE_EXHAUSTED", "--fail-count", 1,
                  "--retry-after-ms", 700) as sink:
            run = tree(sink)
        reqs = sink.requests()
        self.assertEqual([r["status"] for r in reqs], ["RESOURCE_EXHAUSTED", "OK"])
        gap = (reqs[1]["t"] - reqs[0]["t"]) / 1e9
        # The server's delay (700 ms), not the 50 ms backoff.
        self.assertGreaterEqual(gap, 0.65)
        self.assertLess(gap, 5)
        self.assertEqual(run.stats["exported"], 4)

    def test_retry_info_on_unavailable_is_honoured_too(self):
        with Sink("--fail-unavailable", 1, "--retry-after-ms", 600) as sink:
            tree(sink)
        reqs = sink.requests()
        self.assertGreaterEqual((reqs[1]["t"] - reqs[0]["t"]) / 1e9, 0.55)

    def test_backoff_is_exponential_and_capped(self):
        with Sink("--fail-unavailable", 5) as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--retry-initial-ms", "100",
                       "--retry-max-ms", "250", "--retry-max-elapsed-ms", "10000",
                       "--batch-timeout-ms", "50", endpoint=sink.endpoint)
        t = [r["t"] / 1e9 for r in sink.requests()]
        gaps = [b - a for a, b in zip(t, t[1:])]
        self.assertEqual(len(gaps), 5)
        # Nominal 100, 200, 250, 250, 250 ms with +-20% jitter, plus call time.
        # A sleep never ends early, so the lower bounds hold on any machine and
        # show the doubling (the second wait is over the first's +20%). Without
        # the cap the last wait would be at least 1.28 s (1.6 s - 20%); 1.2 s
        # leaves 0.9 s for a loaded machine's call time and scheduling.
        lo = [0.08, 0.16, 0.2, 0.2, 0.2]
        for g, low in zip(gaps, lo):
            self.assertGreaterEqual(g, low, gaps)
            self.assertLess(g, 1.2, gaps)
        self.assertEqual(run.stats["exported"], 4)

    def test_retries_stop_after_max_elapsed(self):
        with Sink("--fail-code", "UNAVAILABLE") as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--retry-initial-ms", "100",
                       "--retry-max-ms", "100", "--retry-max-elapsed-ms", "600",
                       "--batch-timeout-ms", "50", endpoint=sink.endpoint)
        n = len(sink.requests())
        self.assertGreaterEqual(n, 3)
        self.assertLessEqual(n, 9)
        self.assertEqual(run.stats["dropped"]["export_failed"], 4)
        self.assertEqual(run.stats["exported"], 0)
        self.assertLess(run.wall, 10)

    def test_connection_refused_is_retried_then_dropped(self):
        run = emit("--scenario", "tree", "--child-ms", "0", "--retry-initial-ms", "50",
                   "--retry-max-ms", "100", "--retry-max-elapsed-ms", "500",
                   "--batch-timeout-ms", "50", "--flush-timeout-ms", "5000",
                   endpoint="127.0.0.1:9")
        self.assertGreaterEqual(run.stats["retries"], 2)
        self.assertEqual(run.stats["dropped"]["export_failed"], 4)


class PartialSuccessTest(unittest.TestCase):
    def test_rejected_spans_counted(self):
        with Sink("--partial-success", 3) as sink:
            run = tree(sink)
        self.assertEqual(len(sink.requests()), 1)   # a partial success is not retried
        self.assertEqual(run.stats["exported"], 1)
        self.assertEqual(run.stats["dropped"]["rejected"], 3)
        self.assertEqual(run.stats["retries"], 0)
        self.assertIn("rejected", run.stderr)
        self.assertIn("rejected by sink", run.stderr)

    def test_rejected_never_exceeds_batch(self):
        with Sink("--partial-success", 100) as sink:
            run = tree(sink)
        self.assertEqual(run.stats["exported"], 0)
        self.assertEqual(run.stats["dropped"]["rejected"], 4)


class FlushTest(unittest.TestCase):
    def test_flush_sends_without_waiting_for_batch_timeout(self):
        with Sink() as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--batch-timeout-ms", "60000",
                       "--flush-timeout-ms", "5000", endpoint=sink.endpoint)
        self.assertEqual(run.stats["flush_rc"], 0)
        self.assertEqual(len(sink.spans()), 4)
        self.assertLess(run.wall, 20)

    def test_shutdown_flushes_partial_batch(self):
        with Sink() as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--batch-timeout-ms", "60000",
                       endpoint=sink.endpoint)
        self.assertEqual(len(sink.spans()), 4)
        self.assertLess(run.stats["destroy_s"], 5)

    def test_batches_by_size(self):
        with Sink() as sink:
            run = emit("--scenario", "flood", "--count", 1000, "--batch-size", 100,
                       "--queue-size", 1000, "--batch-timeout-ms", "60000",
                       endpoint=sink.endpoint)
        sizes = [r["spans"] for r in sink.requests()]
        self.assertEqual(sum(sizes), 1000)
        self.assertTrue(all(s <= 100 for s in sizes), sizes)
        self.assertGreaterEqual(len(sizes), 10)
        self.assertEqual(run.stats["exported"], 1000)

    def test_batches_by_time(self):
        with Sink() as sink:
            run = emit("--scenario", "tree", "--child-ms", "0", "--gap-ms", "700",
                       "--batch-size", "512",
                       "--batch-timeout-ms", "200", endpoint=sink.endpoint)
        # 700 ms after the first child ends the others follow; the first
        # waits at most 200 ms in the queue, so it leaves in its own Export.
        self.assertGreaterEqual(len(sink.requests()), 2)
        self.assertEqual(run.stats["exported"], 4)


if __name__ == "__main__":
    main()
