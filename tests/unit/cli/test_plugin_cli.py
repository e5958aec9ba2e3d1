"""kubectl compute as a kubectl plugin: flags where kubectl has them, the context's namespace,
outputs, one-line errors with distinct exit statuses, completion from the parser, and no
credential copied to disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from interconnect.cli import kube, plugin
from interconnect.cli.kube import EXIT_HELP, Exit, PluginError, api_error, connect, exit_for_status
from interconnect.cli.main import in_memory_file, single_context
from interconnect.cli.plugin import (
    build_parser,
    complete_words,
    completion_script,
    render_explain,
    render_quote,
    render_topology,
)
from interconnect.cli.report import Row, render
from interconnect.core.placement import place
from interconnect.services.translate import job_request
from tests.unit.cli.test_plugin import MARKET, NOW, job, quote_lines, snapshot

ROOT = Path(__file__).resolve().parents[3]


def kubeconfig(path: Path, namespace: str | None = "team-a") -> Path:
    ctx: dict[str, Any] = {"cluster": "c", "user": "u"}
    if namespace:
        ctx["namespace"] = namespace
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "hub",
        "contexts": [{"name": "hub", "context": ctx}, {"name": "other", "context": {"cluster": "c", "user": "u"}}],
        "clusters": [{"name": "c", "cluster": {"server": "https://192.0.2.9:6443", "certificate-authority": "ca.crt"}}],
        "users": [{"name": "u", "user": {"token": "secret-token"}}]}))
    (path.parent / "ca.crt").write_text("")
    return path


def run_plugin(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interconnect.cli.plugin", *args], capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT / "operator"), "PATH": os.environ.get("PATH", ""), **(env or {})})


# ------------------------------------------------------------------ flags


def test_connection_flags_go_before_or_after_the_command() -> None:
    parser = build_parser()
    before = parser.parse_args(["--context", "hub", "--kubeconfig", "k", "topology"])
    after = parser.parse_args(["topology", "--context", "hub", "--kubeconfig", "k"])
    assert (before.context, before.kubeconfig) == (after.context, after.kubeconfig) == ("hub", "k")
    assert parser.parse_args(["--context", "hub", "topology"]).context == "hub", "unset after: the value before"
    assert parser.parse_args(["topology"]).operator_namespace == "interconnect-system"


@pytest.mark.parametrize("command", [["explain", "cjob"], ["topology"], ["usage"]])
def test_all_namespaces_where_kubectl_has_it(command: list[str]) -> None:
    assert build_parser().parse_args([*command, "-A"]).all_namespaces


@pytest.mark.parametrize("command", [["quote", "-f", "x"], ["logs", "cjob", "x"]])
def test_no_all_namespaces_for_one_object(command: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*command, "-A"])


@pytest.mark.parametrize("command", [["quote", "-f", "x"], ["explain", "cjob"], ["topology"], ["usage"]])
@pytest.mark.parametrize("output", ["wide", "name", "json", "yaml"])
def test_outputs_kubectl_knows(command: list[str], output: str) -> None:
    assert build_parser().parse_args([*command, "-o", output]).output == output


def test_logs_flags() -> None:
    args = build_parser().parse_args(["logs", "cjob", "train", "-f", "--attempt", "2", "-c", "main", "--tail", "10",
                                      "-n", "team-a"])
    assert (args.name, args.follow, args.attempt, args.container, args.tail, args.namespace) == (
        "train", True, 2, "main", 10, "team-a")


def test_help_lists_the_exit_statuses() -> None:
    assert EXIT_HELP in build_parser().format_help()
    for status in Exit:
        if status not in (Exit.INTERRUPTED,):
            assert f"  {int(status)}  " in EXIT_HELP, status


def test_explain_by_name_across_namespaces_is_refused_like_kubectl() -> None:
    run = run_plugin("explain", "cjob", "x", "-A")
    assert run.returncode == Exit.INVALID and run.stderr.startswith("error: a resource cannot be retrieved by name")


# ------------------------------------------------------------------ kubeconfig and context


def test_the_context_namespace_is_the_default(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    assert (connect(str(path), None).namespace, connect(str(path), None).context) == ("team-a", "hub")
    assert connect(str(path), "other").namespace == "default"
    env_path = kubeconfig(tmp_path / "second", namespace="team-b")
    os.environ["KUBECONFIG"] = os.pathsep.join([str(env_path), str(path)])
    try:
        assert connect(None, None).namespace == "team-b", "$KUBECONFIG, merged: the first file's context wins"
    finally:
        del os.environ["KUBECONFIG"]


def test_a_missing_context_or_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    with pytest.raises(PluginError) as caught:
        connect(str(path), "nope")
    assert caught.value.code == Exit.CONFIG and "'nope' not found" in str(caught.value) and "hub, other" in str(
        caught.value)
    with pytest.raises(PluginError) as missing:
        connect(str(tmp_path / "absent"), None)
    assert missing.value.code == Exit.CONFIG
    run = run_plugin("topology", "--kubeconfig", str(path), "--context", "nope")
    assert run.returncode == Exit.CONFIG and run.stderr.count("\n") == 1 and "Traceback" not in run.stderr


def test_an_unreachable_hub_is_one_line_and_leaves_no_file(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    private = tmp_path / "tmp"
    private.mkdir()
    server = yaml.safe_load(path.read_text())
    server["clusters"][0]["cluster"] = {"server": "https://127.0.0.1:9", "insecure-skip-tls-verify": True}
    path.write_text(yaml.safe_dump(server))
    run = run_plugin("topology", "--kubeconfig", str(path), env={"TMPDIR": str(private)})
    assert run.returncode == Exit.UNREACHABLE, run.stderr
    assert run.stderr.startswith("error: ") and run.stderr.count("\n") == 1, run.stderr
    assert list(private.iterdir()) == []


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(("status", "code"), [
    (0, Exit.UNREACHABLE), (400, Exit.INVALID), (422, Exit.INVALID), (401, Exit.UNAUTHORIZED),
    (403, Exit.FORBIDDEN), (404, Exit.NOT_FOUND), (409, Exit.CONFLICT), (429, Exit.CONFLICT),
    (500, Exit.SERVER), (503, Exit.SERVER)])
def test_each_status_has_its_exit(status: int, code: Exit) -> None:
    assert exit_for_status(status) == code


def test_api_errors_are_one_line_with_the_servers_message() -> None:
    from kubernetes.client.exceptions import ApiException

    exc = ApiException(status=403, reason="Forbidden")
    exc.body = json.dumps({"kind": "Status", "message": 'computejobs.interconnect.dev "x" is forbidden:\nUser '
                           '"alice" cannot get resource', "reason": "Forbidden", "code": 403})
    error = api_error(exc, "cannot read computejob b/x")
    assert str(error) == ('cannot read computejob b/x: Forbidden (403): computejobs.interconnect.dev "x" is '
                          'forbidden: User "alice" cannot get resource')
    assert error.code == Exit.FORBIDDEN and error.status == 403
    tls = ApiException(status=0, reason="SSLError\ncertificate verify failed")
    assert api_error(tls, "x").code == Exit.UNREACHABLE and "\n" not in str(api_error(tls, "x"))
    assert api_error(ConnectionRefusedError("refused"), "x").code == Exit.UNREACHABLE


def test_main_prints_the_error_and_returns_its_status(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def refuse(args: Any) -> int:
        raise PluginError("cannot list computejobs: Forbidden (403): no", Exit.FORBIDDEN)

    monkeypatch.setattr(plugin, "cmd_topology", refuse)
    assert plugin.main(["topology"]) == Exit.FORBIDDEN
    assert capsys.readouterr().err == "error: cannot list computejobs: Forbidden (403): no\n"


# ------------------------------------------------------------------ outputs


def test_usage_yaml_is_yaml_not_a_table() -> None:
    from decimal import Decimal

    rows = [Row("team-a", "CNY", 2, Decimal("1.5"), Decimal("12.00"), 3)]
    data = yaml.safe_load(render(rows, "yaml", "tenant"))
    assert data == [{"tenant": "team-a", "currency": "CNY", "jobs": 2, "cardHours": "1.5", "cost": "12.00"}]
    assert data == json.loads(render(rows, "json", "tenant"))
    assert "ATTEMPTS" in render(rows, "wide", "tenant").splitlines()[0]
    assert "ATTEMPTS" not in render(rows, "table", "tenant")
    assert yaml.safe_load(render([], "yaml", "tenant")) == []


def test_usage_goes_to_the_namespace_of_the_context_and_yaml_is_honoured(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    asked: list[str | None] = []
    real_namespace = plugin.Hub.namespace

    class FakeHub:
        connection = kube.Connection(api=None, context="hub", namespace="team-a")

        def __init__(self, *args: Any) -> None:
            pass

        def namespace(self, args: Any) -> str | None:
            return real_namespace(self, args)  # type: ignore[arg-type]

        def usage_records(self, namespace: str | None, selector: str | None) -> list[dict[str, Any]]:
            asked.append(namespace)
            return [{"metadata": {"name": "u-1"}, "spec": {
                "tenant": namespace or "t", "jobUID": "u", "cardHours": "2", "cost": "16.00", "currency": "CNY",
                "finishedAt": "2026-11-02T00:00:00Z"}}]

    monkeypatch.setattr(plugin, "Hub", FakeHub)
    window = ["--since", "2026-11-01", "--until", "2026-12-01"]
    assert plugin.main(["usage", "-o", "yaml", *window]) == 0
    assert yaml.safe_load(capsys.readouterr().out)[0]["tenant"] == "team-a"
    assert plugin.main(["usage", "-n", "team-b", "-o", "name", *window]) == 0
    assert capsys.readouterr().out.strip() == "computeusage.interconnect.dev/u-1"
    assert plugin.main(["usage", "-A", "-o", "json", *window]) == 0
    capsys.readouterr()
    assert asked == ["team-a", "team-b", None]


def test_quote_wide_has_the_region_and_every_reason_uncut() -> None:
    request = job_request(job(expectedHours="10"))
    decision = place(request, snapshot(MARKET, NOW))
    lines = quote_lines(request, MARKET, decision, None)
    wide = render_quote(lines, decision, wide=True)
    header = wide.splitlines()[0].split()
    assert header[:4] == ["OFFER", "NODE", "IDENTITY", "REGION"] and header[-1] == "REASON"
    assert "latency beyond 20ms: RTT" in wide and "why not the others" not in wide


def test_topology_says_whose_jobs_it_counts_and_wide_lists_offers() -> None:
    assert render_topology(MARKET, "in namespace t").splitlines()[0] == "hub (national node); jobs counted in " \
                                                                        "namespace t"
    wide = render_topology(MARKET, wide=True)
    assert "offer sh-h800: NVIDIA-H800 15/16 at 28.00 CNY/card-hour" in wide


def test_explain_wide_does_not_cut() -> None:
    long = "x" * 300
    raw = {"metadata": {"name": "q", "namespace": "t"}, "spec": {"origin": "CN-SH"},
           "status": {"phase": "Failed", "conditions": [{"type": "Failed", "status": "True", "message": long}]}}
    assert long in render_explain(raw, None, wide=True) and long not in render_explain(raw, None)


# ------------------------------------------------------------------ completion


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_is_generated_from_the_parser(shell: str) -> None:
    script = completion_script(shell)
    for word in ("quote", "explain", "logs", "topology", "usage", "--all-namespaces", "--attempt", "wide"):
        assert (word.lstrip("-") if shell == "fish" else word) in script, (shell, word)
    binary = shutil.which(shell)
    if binary and shell != "fish":
        check = subprocess.run([binary, "-n"], input=script, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_bash_completion_completes_commands_flags_and_choices(tmp_path: Path) -> None:
    script = tmp_path / "completion.bash"
    script.write_text(completion_script("bash"))

    def complete(*words: str) -> list[str]:
        line = " ".join(["kubectl-compute", *words])
        program = (f'source {script}; COMP_WORDS=(kubectl-compute {" ".join(repr(w) for w in words)}); '
                   f'COMP_CWORD={len(words)}; COMP_LINE="{line}"; COMP_POINT=${{#COMP_LINE}}; '
                   '_shtab_kubectl_compute; printf "%s\\n" "${COMPREPLY[@]}"')
        out = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
        return out.stdout.split()

    assert complete("lo") == ["logs"]
    assert "--follow" in complete("logs", "--f")
    assert complete("usage", "-o", "") == ["table", "wide", "name", "json", "yaml", "csv"]


def test_kubectl_plugin_completion_answers_in_cobras_format(capsys: pytest.CaptureFixture[str]) -> None:
    assert complete_words([], "ex") == (["explain"], plugin.NO_FILE_COMPLETION)
    assert complete_words(["explain"], "")[0] == ["cjob", "computejob", "computejobs"]
    assert complete_words(["topology", "-o"], "j")[0] == ["json"]
    assert complete_words(["quote", "-f"], "") == ([], plugin.FILE_COMPLETION)
    assert "--attempt" in complete_words(["logs", "cjob", "x"], "--")[0]
    assert plugin.complete_main(["completion", ""]) == 0
    assert capsys.readouterr().out.splitlines() == ["bash", "zsh", "fish", ":4"]


# ------------------------------------------------------------------ no credential copies


def test_run_context_is_an_in_memory_kubeconfig_of_that_context(tmp_path: Path) -> None:
    path = kubeconfig(tmp_path / "config")
    config = single_context([str(tmp_path / "absent"), str(path)], "other")
    assert config["current-context"] == "other" and [c["name"] for c in config["contexts"]] == ["other"]
    assert config["clusters"][0]["cluster"]["certificate-authority"] == str(tmp_path / "ca.crt"), "made absolute"
    with pytest.raises(SystemExit):
        single_context([str(path)], "nope")
    before = set(Path("/tmp").iterdir())
    where = in_memory_file(yaml.safe_dump(config), "test.kubeconfig")
    assert where.startswith(f"/proc/{os.getpid()}/fd/")
    assert yaml.safe_load(Path(where).read_text())["current-context"] == "other"
    assert set(Path("/tmp").iterdir()) - before == set(), "nothing written to /tmp"
    os.close(int(where.rsplit("/", 1)[1]))


def test_main_usage_uses_the_client_library_for_the_context() -> None:
    source = (ROOT / "operator" / "interconnect" / "cli" / "main.py").read_text()
    assert "tempfile" not in source and "mkstemp" not in source
