"""The deploy queue: one at a time, only the newest waiting commit kept, dedupe on delivery and commit,
pushes only forward; and each step recorded by one object."""

import contextlib
import threading

import pytest

from hook.ledger import Ledger

A, B, C = "a" * 40, "b" * 40, "c" * 40
REF = "refs/heads/main"


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "hook.sqlite"))
    ledger.create()
    return ledger


def status_of(ledger, deploy_id):
    return ledger.deploy(deploy_id)["status"]


def test_a_push_is_queued(ledger):
    decision = ledger.enqueue("github", A, REF, delivery_id="d1")
    assert decision.outcome == "accepted" and decision.deploy_id
    assert [d["sha"] for d in ledger.status()["queue"]] == [A]


def test_a_newer_push_supersedes_the_waiting_one(ledger):
    first = ledger.enqueue("github", A, REF, delivery_id="d1")
    second = ledger.enqueue("github", B, REF, delivery_id="d2")
    assert second.outcome == "accepted"
    assert f"superseded deploy {first.deploy_id}" in second.reason
    assert status_of(ledger, first.deploy_id) == "skipped"
    assert "superseded" in ledger.deploy(first.deploy_id)["reason"]
    assert [d["sha"] for d in ledger.status()["queue"]] == [B]


def test_pushes_while_one_runs_keep_only_the_newest_waiting(ledger):
    running = ledger.enqueue("github", A, REF, delivery_id="d1")
    assert ledger.claim_next()["id"] == running.deploy_id
    b = ledger.enqueue("github", B, REF, delivery_id="d2")
    c = ledger.enqueue("github", C, REF, delivery_id="d3")
    assert status_of(ledger, b.deploy_id) == "skipped"
    assert ledger.claim_next() is None  # one at a time
    ledger.finish(running.deploy_id, "succeeded", "done")
    assert ledger.claim_next()["id"] == c.deploy_id


def test_a_replayed_delivery_changes_nothing(ledger):
    first = ledger.enqueue("github", A, REF, delivery_id="same")
    again = ledger.enqueue("github", B, REF, delivery_id="same")
    assert again.outcome == "duplicate"
    assert again.deploy_id == first.deploy_id
    assert [d["sha"] for d in ledger.status()["queue"]] == [A]


def test_the_live_commit_is_not_deployed_again(ledger):
    ledger.set_live(A)
    decision = ledger.enqueue("github", A, REF, delivery_id="d1")
    assert decision.outcome == "skipped" and "already live" in decision.reason
    assert ledger.status()["queue"] == []


def test_the_commit_being_deployed_is_not_queued_again(ledger):
    running = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.claim_next()
    decision = ledger.enqueue("github", A, REF, delivery_id="d2")
    assert decision.outcome == "skipped" and decision.deploy_id == running.deploy_id


def test_the_waiting_commit_is_not_queued_twice(ledger):
    first = ledger.enqueue("github", A, REF, delivery_id="d1")
    again = ledger.enqueue("github", A, REF, delivery_id="d2")
    assert again.outcome == "accepted" and again.deploy_id == first.deploy_id


def test_going_back_to_the_live_commit_while_another_runs_is_queued(ledger):
    ledger.set_live(A)
    ledger.enqueue("github", B, REF, delivery_id="d1")
    ledger.claim_next()
    assert ledger.enqueue("github", A, REF, delivery_id="d2").outcome == "accepted"


def test_a_waiting_deploy_of_what_became_live_is_skipped_at_claim(ledger):
    waiting = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.set_live(A)
    assert ledger.claim_next() is None
    assert status_of(ledger, waiting.deploy_id) == "skipped"


def test_concurrent_pushes_leave_exactly_one_waiting(ledger):
    barrier = threading.Barrier(8)

    def push(n):
        barrier.wait()
        ledger.enqueue("github", f"{n:040x}", REF, delivery_id=f"d{n}")

    threads = [threading.Thread(target=push, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(ledger.status()["queue"]) == 1
    assert sum(d["status"] == "skipped" for d in ledger.status()["recent"]) == 7


def test_steps_keep_their_output_and_timings(ledger):
    deploy = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.claim_next()
    with ledger.step(deploy.deploy_id, "build") as log:
        log.write("step 1/9")
        log.flush()
        running = ledger.deploy(deploy.deploy_id)["steps"][0]
        assert (running["status"], running["output"]) == ("running", "step 1/9\n")
        log.write("step 9/9\n")
    ledger.finish(deploy.deploy_id, "succeeded", "live")
    record = ledger.deploy(deploy.deploy_id)
    assert record["status"] == "succeeded"
    assert record["steps"][0]["name"] == "build" and record["steps"][0]["output"] == "step 1/9\nstep 9/9\n"
    assert record["steps"][0]["status"] == "succeeded" and record["steps"][0]["duration_s"] >= 0
    assert ledger.status()["live"]["sha"] == A


def test_a_step_that_raises_is_recorded_as_failed_with_what_it_said(ledger):
    deploy = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.claim_next()
    with pytest.raises(RuntimeError), ledger.step(deploy.deploy_id, "migrate") as log:
        log.write("upgrading")
        raise RuntimeError("the database said no")
    (step,) = ledger.deploy(deploy.deploy_id)["steps"]
    assert step["status"] == "failed"
    assert step["output"] == "upgrading\nFAILED: the database said no\n"


def test_a_push_of_an_ancestor_of_the_live_commit_is_refused_unless_forced(ledger):
    ledger.set_live(C)
    ledger.set_live_ancestry([C, B, A])
    refused = ledger.enqueue("github", A, REF, delivery_id="replayed")
    assert refused.outcome == "refused" and "older than the live commit" in refused.reason
    assert refused.deploy_id is None and ledger.status()["queue"] == []
    assert ledger.seen_delivery("replayed")["outcome"] == "refused"
    # A force-push may move the branch back (the deployer checks it is the branch's tip)...
    assert ledger.enqueue("github", A, REF, delivery_id="forced", forced=True).outcome == "accepted"
    # ...and a rollback goes back on purpose.
    assert ledger.enqueue("github", B, REF, kind="rollback").outcome == "accepted"


def test_a_commit_not_known_as_older_is_accepted_for_the_deployer_to_check(ledger):
    ledger.set_live(C)
    ledger.set_live_ancestry([C, B])
    assert ledger.enqueue("github", A, REF, delivery_id="d1").outcome == "accepted"


def test_only_finished_statuses_end_a_deploy(ledger):
    deploy = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.claim_next()
    with pytest.raises(ValueError, match="not a finished status"):
        ledger.finish(deploy.deploy_id, "running", "")
    ledger.finish(deploy.deploy_id, "rolled_back", "unhealthy after the switch")
    assert status_of(ledger, deploy.deploy_id) == "rolled_back"
    assert ledger.live_sha() is None


def test_a_deployer_restart_fails_what_was_left_running(ledger):
    deploy = ledger.enqueue("github", A, REF, delivery_id="d1")
    ledger.claim_next()
    assert ledger.interrupt_running("interrupted") == [deploy.deploy_id]
    assert status_of(ledger, deploy.deploy_id) == "failed"


def deployed(ledger, sha, *, built=True, live=True, delivery=None):
    """Run one deploy of ``sha`` through the ledger: built or not, live or failed."""
    deploy = ledger.enqueue("github", sha, REF, delivery_id=delivery or f"delivery-{sha[:4]}")
    assert ledger.claim_next()["id"] == deploy.deploy_id
    with contextlib.suppress(RuntimeError), ledger.step(deploy.deploy_id, "build"):
        if not built:
            raise RuntimeError("the build failed")
    ledger.finish(deploy.deploy_id, "succeeded" if live else "failed", "")
    return deploy.deploy_id


def test_old_images_are_pruned_but_the_recent_live_ones_stay(ledger):
    D, E, F = "d" * 40, "e" * 40, "f" * 40
    deployed(ledger, A)
    deployed(ledger, B)
    deployed(ledger, C, live=False)  # built, never live
    deployed(ledger, D, built=False, live=False)  # its build failed: no image
    deployed(ledger, E)
    # F is being deployed now; the two most recently live before it are E and B.
    assert ledger.images_to_prune(F, keep=2) == [A, C]
    assert ledger.images_to_prune(F, keep=0) == [A, B, C, E]
    # A rollback to A: A is current, so it stays whatever its age.
    assert ledger.images_to_prune(A, keep=1) == [B, C]
