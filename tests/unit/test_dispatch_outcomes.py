"""How a refused dispatch and a failed member Job are reported: never retried forever, never a
message that outgrows the object."""

from __future__ import annotations

import pytest

from interconnect.services.controller import MESSAGE_LIMIT, failure_summary, member_refused, summarised


@pytest.mark.parametrize(("status", "refused"), [
    (400, True), (403, True), (404, True), (422, True),
    (401, False), (408, False), (409, False), (429, False), (500, False), (503, False), (None, False),
])
def test_which_member_answers_end_the_attempt(status: int | None, refused: bool) -> None:
    assert member_refused(status) is refused


def test_a_long_message_is_summarised_and_says_how_much_was_left_out() -> None:
    text = "x" * 40_000
    short = summarised(text)
    assert len(short) == MESSAGE_LIMIT
    assert short.endswith(f"... ({40_000 - MESSAGE_LIMIT} more characters)")
    assert summarised("short") == "short"


def test_four_hundred_failing_pods_make_one_line() -> None:
    pods = [(f"p-{i:03d}", "container train exited with code 1") for i in range(398)]
    pods += [("p-398", "OOMKilled"), ("p-399", "Evicted")]
    text = failure_summary("BackoffLimitExceeded", "Job has reached the specified backoff limit", pods)
    assert text.startswith("BackoffLimitExceeded: Job has reached the specified backoff limit (398 pods: "
                           "container train exited with code 1 (e.g. p-000)")
    assert "p-398: OOMKilled" in text and "p-399: Evicted" in text
    assert len(text) < 400
    many = [(f"p{i}", f"reason {i}") for i in range(50)]
    assert failure_summary("Failed", None, many).endswith("; 45 other reasons)")
