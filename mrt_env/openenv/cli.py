"""``mrt-gym``: serve ``MRTMath-v0`` over the network (OpenEnv WebSocket protocol).

Example::

    mrt-gym serve --port 8000                       # tiny LM as μ, on 127.0.0.1
    mrt-gym serve --lm openai:http://127.0.0.1:8001/v1 \\
        --problems math500=../shared/data/math500.jsonl

Without ``--token`` the server has no authentication: keep it on loopback (the default
``--host 127.0.0.1``); anyone who can reach the port can run the models.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(add_completion=False, help=__doc__, pretty_exceptions_enable=False)


@app.callback()
def _main() -> None:
    """mrt-gym command-line tools."""


def _problem_sets(specs: list[str]) -> dict[str, str]:
    if not specs:
        return {"tinymath": "tinymath"}
    sets: dict[str, str] = {}
    for spec in specs:
        name, sep, source = spec.partition("=")
        if not sep:
            name, source = spec, spec
        if not name or not source:
            raise typer.BadParameter(f"--problems takes NAME=SOURCE or SOURCE, got {spec!r}")
        sets[name] = source
    return sets


@app.command()
def serve(
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    host: Annotated[
        str, typer.Option(help="interface (127.0.0.1: this machine only; see --token)")
    ] = "127.0.0.1",
    lm: Annotated[
        str, typer.Option(help="μ's model: tiny | tiny:VARIANT | HF folder | openai:URL[#MODEL]")
    ] = "tiny",
    problems: Annotated[
        list[str] | None,
        typer.Option(help="problem set NAME=SOURCE (tinymath, JSONL path); repeatable"),
    ] = None,
    k: Annotated[int, typer.Option(help="default K forced answers per J")] = 8,
    token_budget: Annotated[int, typer.Option(help="default token budget")] = 512,
    template: Annotated[str | None, typer.Option(help="template preset")] = None,
    max_sessions: Annotated[int, typer.Option(help="concurrent sessions")] = 64,
    max_action_chars: Annotated[int, typer.Option(help="longest episode text")] = 16_384,
    max_message_bytes: Annotated[int, typer.Option(help="largest WebSocket message")] = 1 << 20,
    idle_timeout: Annotated[float, typer.Option(help="close sessions idle this long (s)")] = 300,
    step_timeout: Annotated[float, typer.Option(help="fail a reset/step after (s)")] = 120,
    batch_window_ms: Annotated[float, typer.Option(help="wait for other sessions (ms)")] = 2.0,
    token: Annotated[
        str | None, typer.Option(envvar="MRT_GYM_TOKEN", help="bearer token clients must send")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu | cuda")] = None,
    j_cache_size: Annotated[int, typer.Option(help="J estimates cached per step core")] = 4096,
    max_cores: Annotated[int, typer.Option(help="distinct session settings kept built")] = 8,
    prefix_cache_mb: Annotated[
        float | None, typer.Option(help="local model's prefix KV cache cap (MiB)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "warning",
) -> None:
    """Serve MRTMath-v0 (one trajectory per WebSocket session, μ batched across sessions)."""
    from mrt_env.openenv.server import ServeSettings
    from mrt_env.openenv.server import serve as run

    defaults: dict[str, object] = {"k": k, "token_budget": token_budget}
    if template is not None:
        defaults["template"] = template
    if device is not None:
        defaults["device"] = device
    settings = ServeSettings(
        lm=lm,
        problem_sets=_problem_sets(problems or []),
        defaults=defaults,
        max_sessions=max_sessions,
        max_action_chars=max_action_chars,
        max_message_bytes=max_message_bytes,
        idle_timeout_s=idle_timeout,
        step_timeout_s=step_timeout,
        batch_window_s=batch_window_ms / 1000,
        token=token,
        j_cache_size=j_cache_size,
        max_cores=max_cores,
        prefix_cache_mb=prefix_cache_mb,
    )
    if token is None and host not in ("127.0.0.1", "localhost", "::1"):
        typer.echo(
            f"warning: serving on {host} without --token: anyone who reaches the port can use "
            "the models",
            err=True,
        )
    typer.echo(f"MRTMath-v0 on http://{host}:{port} (OpenEnv WebSocket /ws)", err=True)
    run(settings, host=host, port=port, log_level=log_level)


if __name__ == "__main__":
    app()
