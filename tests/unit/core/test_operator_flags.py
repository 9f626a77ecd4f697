"""``mcp-operator run`` flags: every flag has an environment-variable twin; the flag wins over it."""

from __future__ import annotations

import pytest

from controller.main import options_from, parse_args


def test_each_flag_reads_its_environment_twin_and_the_flag_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKERS", "5")
    monkeypatch.setenv("KUBE_API_QPS", "0")
    monkeypatch.setenv("LEADER_ELECT", "true")
    monkeypatch.setenv("METRICS_BIND_ADDRESS", "")  # set but empty: the default
    args = parse_args([])
    assert (args.workers, args.kube_api_qps, args.leader_elect) == (5, 0.0, True)
    assert args.metrics_bind_address == ":8080"
    assert parse_args(["--workers", "3"]).workers == 3


def test_a_bad_environment_value_is_refused_like_a_bad_flag(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WORKERS", "0")
    with pytest.raises(SystemExit):
        parse_args([])
    assert "--workers: expected an integer >= 1, got '0'" in capsys.readouterr().err


def test_help_names_each_environment_twin_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    for twin in ("env KUBE_API_BURST; default 30", "env LOG_FORMAT; default json", "env WATCH_NAMESPACE"):
        assert twin in text


def test_watches_have_their_own_connection_pool_sized_by_a_flag() -> None:
    args = parse_args(["--kube-api-connections", "50", "--kube-watch-connections", "800"])
    options = options_from(args)
    assert (options.api_connections, options.watch_connections) == (50, 800)
    defaults = options_from(parse_args([]))
    assert (defaults.api_connections, defaults.watch_connections) == (100, 0)  # 0: one per watch
