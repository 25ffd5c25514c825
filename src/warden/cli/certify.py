"""``warden certify …``: access certification campaigns and owners' review decisions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from warden.cli.client import (
    DEFAULT_DATA_DIR,
    DEFAULT_URL,
    DataDirOption,
    JsonOption,
    UrlOption,
    WardenClient,
    seg,
)
from warden.cli.output import (
    col,
    console,
    joined,
    print_json,
    show_list,
    show_table,
    when,
)

app = typer.Typer(help="Access certification campaigns.", no_args_is_help=True)


def _reviews(body: dict[str, Any]) -> None:
    console.print(
        f"campaign {body['id']} [{body['status']}] started {when(body['started_at'])}, "
        f"deadline {when(body['deadline'])}, unanswered → {body['on_timeout']}"
        + (f", every {body['every'] / 86400:g} d" if body.get("every") else ""),
        markup=False,
    )
    show_table(
        body.get("reviews", []),
        [
            col("review", "id"),
            col("agent"),
            col("owner"),
            col("status"),
            col("entitlements", fmt=joined),
            col("used in period", "used", lambda v: joined(v) or "—"),
            col("result", fmt=lambda v: joined(v) if v is not None else ""),
        ],
    )


@app.command("start")
def start(
    every: Annotated[
        str | None, typer.Option("--every", help="Repeat every (e.g. 90d); omit for a one-off.")
    ] = None,
    window: Annotated[
        str | None, typer.Option("--window", help="Time owners have to answer (e.g. 14d).")
    ] = None,
    on_timeout: Annotated[
        str | None, typer.Option("--on-timeout", help="reduce (to what was used) or suspend.")
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Open a review per active agent for its owner (and schedule the next with --every)."""
    with WardenClient(url, data_dir) as client:
        body = client.post(
            "/v1/certifications", {"every": every, "window": window, "on_timeout": on_timeout}
        )
    if as_json:
        print_json(body)
        return
    _reviews(body)


@app.command("list")
def list_campaigns(
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Campaigns, newest first."""
    with WardenClient(url, data_dir) as client:
        body = client.get("/v1/certifications")
    show_list(
        body,
        "campaigns",
        [
            col("campaign", "id"),
            col("status"),
            col("started", "started_at", when),
            col("deadline", fmt=when),
            col("every (d)", "every", lambda v: f"{v / 86400:g}" if v else ""),
        ],
        as_json=as_json,
    )


@app.command("show")
def show(
    campaign: Annotated[str, typer.Argument(help="Campaign id.")],
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """A campaign and its reviews."""
    with WardenClient(url, data_dir) as client:
        body = client.get(f"/v1/certifications/{seg(campaign)}")
    if as_json:
        print_json(body)
        return
    _reviews(body)


@app.command("decide")
def decide(
    review: Annotated[str, typer.Argument(help="Review id.")],
    decision: Annotated[str, typer.Argument(help="keep, reduce or revoke.")],
    keep: Annotated[
        list[str] | None,
        typer.Option("--keep", help="With reduce: the entitlements to keep (default: used ones)."),
    ] = None,
    as_json: JsonOption = False,
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Answer a review: keep, reduce or revoke the agent's entitlements."""
    body: dict[str, Any] = {}
    if keep:
        body["entitlements"] = [e for value in keep for e in value.replace(",", " ").split()]
    with WardenClient(url, data_dir) as client:
        answer = client.post(f"/v1/certifications/reviews/{seg(review)}/{seg(decision)}", body)
    if as_json:
        print_json(answer)
        return
    console.print(
        f"review {answer['id']} ({answer['agent']}): {answer['status']}; entitlements "
        f"now {joined(answer['result']) or '—'}",
        markup=False,
    )


@app.command("close")
def close(
    campaign: Annotated[str, typer.Argument(help="Campaign id.")],
    url: UrlOption = DEFAULT_URL,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
) -> None:
    """Close a campaign now: unanswered reviews get the timeout action."""
    with WardenClient(url, data_dir) as client:
        body = client.post(f"/v1/certifications/{seg(campaign)}/close")
    _reviews(body)
