"""The operator's log format: text lines by default, one JSON object per line with `--log-format json`
(the hub chart's logging.format), through kopf's own JSON formatter."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import kopf
import pytest

from interconnect.cli.main import build_parser
from interconnect.operator_main import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    names = ("", "asyncio", "kubernetes_asyncio", "aiohttp", "urllib3")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).level, logging.getLogger(n).propagate)
             for n in names}
    try:
        yield
    finally:
        for n, (handlers, level, propagate) in saved.items():
            logger = logging.getLogger(n)
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate = propagate


def test_the_run_command_takes_the_log_format() -> None:
    parser = build_parser()
    assert parser.parse_args(["run"]).log_format == "text"
    assert parser.parse_args(["run", "--log-format", "json"]).log_format == "json"
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--log-format", "xml"])


def test_json_lines_carry_the_message_severity_logger_extras_and_the_object(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging(log_format="json")
    logging.getLogger("interconnect.services.meter").warning("metered %s card-hours", "1.5", extra={"node": "gz"})
    body = {"apiVersion": "interconnect.dev/v1alpha1", "kind": "ComputeJob",
            "metadata": {"name": "train", "namespace": "tenant-a", "uid": "u-1"}}
    kopf.LocalObjectLogger(body=body, settings=kopf.OperatorSettings()).info("placed on gz-regional")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert len(lines) == 2, lines
    plain, about = lines
    assert plain["message"] == "metered 1.5 card-hours" and plain["severity"] == "warn"
    assert plain["logger"] == "interconnect.services.meter" and plain["node"] == "gz"
    assert plain["timestamp"]
    assert about["message"] == "placed on gz-regional" and about["severity"] == "info"
    assert about["object"] == {"apiVersion": "interconnect.dev/v1alpha1", "kind": "ComputeJob", "name": "train",
                               "namespace": "tenant-a", "uid": "u-1"}
    # Debug lines only with -v; the client libraries stay at INFO either way.
    logging.getLogger("interconnect").debug("hidden")
    assert capsys.readouterr().err == ""
    configure_logging(log_format="json", verbose=True)
    logging.getLogger("interconnect").debug("shown")
    logging.getLogger("aiohttp").debug("hidden")
    [shown] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert shown["message"] == "shown" and shown["severity"] == "debug"


def test_json_replaces_the_text_handler_and_text_stays_the_default(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root = logging.getLogger()
    root.handlers[:] = []   # as in the operator's process (pytest's own handlers come back after)
    configure_logging()
    logging.getLogger("interconnect").info("as text")
    err = capsys.readouterr().err
    assert " INFO interconnect: as text" in err, err
    configure_logging(log_format="json")
    assert len(root.handlers) == 1, "the text handler is replaced, not doubled"
    logging.getLogger("interconnect").info("as json")
    [line] = capsys.readouterr().err.splitlines()
    assert json.loads(line)["message"] == "as json"
    with pytest.raises(ValueError, match="xml"):
        configure_logging(log_format="xml")
