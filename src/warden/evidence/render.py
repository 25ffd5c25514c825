"""Render a controls report as JSON, Markdown, or one self-contained HTML file.

The HTML has no external references (no CDN, fonts or scripts): styles are inline and the
charts are SVG drawn here — decisions over time (stacked allow / monitor / deny bars), denies by
policy (horizontal bars) and approvals by latency (a histogram). Integrity comes first, in red
when the log does not verify.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from html import escape
from typing import Any

STATUS_LABEL = {
    "pass": "PASS",
    "fail": "FAIL",
    "no_data": "NO DATA",
    "not_evaluable": "NOT EVALUATED",
}
COLOURS = {"allow": "#2e7d32", "monitor": "#f9a825", "deny": "#c62828", "bar": "#1565c0"}


def when(ts: Any) -> str:
    if ts is None:
        return "—"
    return datetime.fromtimestamp(float(ts), tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n"


# -- markdown -------------------------------------------------------------------------------------


def _md_cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: dict[str, Any]) -> str:
    integ = report["integrity"]
    period = report["period"]
    summary = report["summary"]
    lines = [
        f"# {report['title']}",
        "",
        f"Period: {when(period['from'])} → {when(period['to'])} · generated "
        f"{when(report['generated_at'])} · Warden {report['warden_version']}",
        "",
        "## Integrity",
        "",
        ("✅ " if integ["ok"] else "❌ **") + integ["statement"] + ("" if integ["ok"] else "**"),
        "",
        f"Records in period: {summary['records_in_period']} · controls: "
        + ", ".join(f"{STATUS_LABEL[k].lower()} {v}" for k, v in summary["controls"].items()),
        "",
        "## Controls",
        "",
        "| control | status | checked | violations | violating seqs | maps to (OWASP ASI · CSF 2.0 "
        "· SP 800-53) |",
        "|---|---|---|---|---|---|",
    ]
    for c in report["controls"]:
        maps = c["maps_to"]
        seqs = ", ".join(str(s) for s in c["violating_seqs"][:10])
        lines.append(
            f"| {c['id']} {_md_cell(c['title'])} | {STATUS_LABEL[c['status']]} | {c['checked']} | "
            f"{c['violations']} | {seqs} | {', '.join(maps['owasp_asi'])} · "
            f"{', '.join(maps['nist_csf_2'])} · {', '.join(maps['sp800_53'])} |"
        )
    lines += ["", "### Details", ""]
    for c in report["controls"]:
        notes = "; ".join(c["notes"])
        measured = ", ".join(f"{k}={v}" for k, v in c["measured"].items())
        partial = (
            f" _Partial coverage: {c['coverage_note']}._" if c["coverage"] == "partial" else ""
        )
        lines.append(
            f"- **{c['id']}** {c['assertion']}{partial}"
            + (f" Measured: {measured}." if measured else "")
            + (f" Notes: {_md_cell(notes)}." if notes else "")
        )
    asi = report["frameworks"]["owasp_asi"]
    lines += [
        "",
        "## OWASP Top 10 for Agentic Applications (2026)",
        "",
        f"Source: {asi['source']}",
        "",
    ]
    lines += [
        "| risk | title | verdict | controls | only partly addressed |",
        "|---|---|---|---|---|",
    ]
    for row in asi["rows"]:
        lines.append(
            f"| {row['id']} | {row.get('title', '')} | {row['verdict']} | "
            f"{', '.join(row['controls'])} | {_md_cell(row.get('partial', ''))} |"
        )
    for key, heading in (
        ("maestro", "CSA MAESTRO"),
        ("nist_ai_rmf", "NIST AI RMF 1.0"),
        ("nist_csf_2", "NIST CSF 2.0"),
        ("sp800_53", "NIST SP 800-53 Rev. 5"),
    ):
        fw = report["frameworks"][key]
        lines += [
            "",
            f"## {heading}",
            "",
            f"Source: {fw['source']}",
            "",
            "| id | verdict | controls |",
            "|---|---|---|",
        ]
        for row in fw["rows"]:
            label = f"{row['id']} ({row['layer']})" if key == "maestro" else row["id"]
            lines.append(f"| {label} | {row['verdict']} | {', '.join(row['controls'])} |")
    lines += ["", "## Out of scope", "", report["out_of_scope"], ""]
    return "\n".join(lines)


# -- SVG charts ------------------------------------------------------------------------------------


def _svg(width: int, height: int, body: list[str], label: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="100%" role="img" aria-label="{escape(label)}">' + "".join(body) + "</svg>"
    )


def decisions_chart(series: dict[str, Any]) -> str:
    width, height, left, bottom, top = 720, 240, 40, 28, 12
    allow, monitor, deny = series["allow"], series["monitor"], series["deny"]
    n = len(allow)
    totals = [a + m + d for a, m, d in zip(allow, monitor, deny, strict=True)]
    peak = max(totals) or 1
    plot_h = height - bottom - top
    bar_w = (width - left - 10) / max(n, 1)
    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" '
        'stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 8}" text-anchor="end" font-size="11">{peak}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" font-size="11">0</text>',
    ]
    for i in range(n):
        x = left + i * bar_w
        y = height - bottom
        for value, colour, name in (
            (allow[i], COLOURS["allow"], "allow"),
            (monitor[i], COLOURS["monitor"], "monitor"),
            (deny[i], COLOURS["deny"], "deny"),
        ):
            if not value:
                continue
            h = value / peak * plot_h
            y -= h
            body.append(
                f'<rect x="{x + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{value} {name}</title></rect>'
            )
    starts = series["bucket_starts"]
    if starts:
        for idx, anchor in ((0, "start"), (n // 2, "middle"), (n - 1, "end")):
            x = left + (idx + (1 if anchor == "end" else 0)) * bar_w
            label = datetime.fromtimestamp(starts[idx], tz=UTC).strftime("%m-%d %H:%M:%S")
            body.append(
                f'<text x="{x:.1f}" y="{height - 8}" font-size="11" '
                f'text-anchor="{anchor}">{label}</text>'
            )
    legend_x = left + 12
    for j, (name, colour) in enumerate(
        (
            ("allow", COLOURS["allow"]),
            ("monitor (would deny)", COLOURS["monitor"]),
            ("deny", COLOURS["deny"]),
        )
    ):
        body.append(
            f'<rect x="{legend_x}" y="{top + j * 16}" width="10" height="10" fill="{colour}"/>'
        )
        body.append(
            f'<text x="{legend_x + 14}" y="{top + 9 + j * 16}" font-size="11">{name}</text>'
        )
    return _svg(width, height, body, "decisions over time")


def bar_chart(values: dict[str, int], label: str, colour: str = COLOURS["bar"]) -> str:
    rows = list(values.items()) if any(values.values()) else []
    width, row_h, left = 720, 22, 230
    height = max(len(rows), 1) * row_h + 10
    peak = max((v for _, v in rows), default=0) or 1
    body: list[str] = []
    if not rows:
        body.append('<text x="10" y="20" font-size="12" fill="#666">nothing in this period</text>')
    for i, (name, value) in enumerate(rows):
        y = 5 + i * row_h
        w = value / peak * (width - left - 60)
        body.append(
            f'<text x="{left - 8}" y="{y + 14}" text-anchor="end" font-size="12">'
            f"{escape(name[:34])}</text>"
        )
        body.append(
            f'<rect x="{left}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_h - 8}" '
            f'fill="{colour}"><title>{escape(name)}: {value}</title></rect>'
        )
        body.append(f'<text x="{left + w + 6:.1f}" y="{y + 14}" font-size="12">{value}</text>')
    return _svg(width, height, body, label)


# -- HTML ---------------------------------------------------------------------------------------

CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1b1b;
background:#f6f7f9}main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px}h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}
.meta{color:#555}.banner{padding:14px 18px;border-radius:8px;margin:18px 0;font-weight:600}
.ok{background:#e8f5e9;border:1px solid #a5d6a7}.broken{background:#ffebee;border:2px solid #c62828;
color:#b71c1c}.tiles{display:flex;gap:12px;flex-wrap:wrap}
.tile{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:10px 16px;
min-width:120px}.tile b{font-size:24px;display:block}
table{border-collapse:collapse;width:100%;background:#fff}th,td{border-bottom:1px solid #eee;
padding:6px 8px;text-align:left;vertical-align:top}th{background:#fafafa}
.s{font-weight:700;font-size:12px;padding:2px 8px;border-radius:10px;white-space:nowrap}
.pass,.evidenced{background:#e8f5e9;color:#1b5e20}.fail,.violations{background:#ffebee;color:#b71c1c}
.no_data,.no-evidence{background:#eceff1;color:#455a64}.not_evaluable{background:#fff8e1;color:#8d6e00}
.card{background:#fff;border:1px solid #e0e0e0;border-radius:8px;padding:12px;margin:12px 0}
details summary{cursor:pointer}code{font-size:12px}.small{color:#666;font-size:12px}
"""


def _badge(status: str) -> str:
    cls = status.replace(" ", "-")
    return f'<span class="s {cls}">{escape(STATUS_LABEL.get(status, status).upper())}</span>'


def _maps(maps: dict[str, list[str]]) -> str:
    names = {
        "owasp_asi": "OWASP ASI",
        "maestro": "MAESTRO",
        "nist_ai_rmf": "AI RMF",
        "nist_csf_2": "CSF 2.0",
        "sp800_53": "SP 800-53",
        "owasp_nhi": "OWASP NHI",
    }
    return "<br>".join(f"<b>{names[k]}</b> {escape(', '.join(v))}" for k, v in maps.items() if v)


def to_html(report: dict[str, Any]) -> str:
    integ = report["integrity"]
    summary = report["summary"]
    period = report["period"]
    charts = report["charts"]
    out = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(report['title'])}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{escape(report['title'])}</h1>",
        f"<div class='meta'>{when(period['from'])} → {when(period['to'])} · generated "
        f"{when(report['generated_at'])} · Warden {escape(report['warden_version'])}</div>",
        f"<div class='banner {'ok' if integ['ok'] else 'broken'}'>"
        f"{'✔ Integrity verified: ' if integ['ok'] else '✘ '}{escape(integ['statement'])}</div>",
        "<div class='tiles'>",
        f"<div class='tile'><b>{summary['records_in_period']}</b>records in period</div>",
    ]
    for key, value in summary["controls"].items():
        out.append(f"<div class='tile'><b>{value}</b>{_badge(key)}</div>")
    out.append("</div>")
    out += [
        "<h2>Decisions over time</h2><div class='card'>",
        decisions_chart(charts["decisions_over_time"]),
        "</div><h2>Denies by policy</h2><div class='card'>",
        bar_chart(charts["denies_by_policy"], "denies by policy", COLOURS["deny"]),
        "</div><h2>Approvals by latency</h2><div class='card'>",
        bar_chart(charts["approvals_by_latency"], "approvals by latency"),
        "</div><h2>Controls</h2>",
        "<table><tr><th>control</th><th>status</th><th>checked</th><th>violations</th>"
        "<th>maps to</th></tr>",
    ]
    for c in report["controls"]:
        detail = []
        if c["violating_seqs"]:
            detail.append(
                "violating records (seq): <code>"
                + escape(", ".join(str(s) for s in c["violating_seqs"]))
                + "</code>"
            )
        if c["measured"]:
            detail.append(
                "measured: " + escape(", ".join(f"{k}={v}" for k, v in c["measured"].items()))
            )
        detail += [escape(n) for n in c["notes"]]
        if c["coverage"] == "partial":
            detail.append(f"<i>partial coverage: {escape(c['coverage_note'])}</i>")
        out.append(
            f"<tr><td><b>{c['id']}</b> {escape(c['title'])}<details><summary class='small'>"
            f"assertion and evidence</summary><p>{escape(c['assertion'])}</p>"
            f"<p class='small'>{'<br>'.join(detail) or 'no further detail'}</p></details></td>"
            f"<td>{_badge(c['status'])}</td><td>{c['checked']}</td><td>{c['violations']}</td>"
            f"<td class='small'>{_maps(c['maps_to'])}</td></tr>"
        )
    out.append("</table>")
    asi = report["frameworks"]["owasp_asi"]
    out += [
        "<h2>OWASP Top 10 for Agentic Applications (2026)</h2>",
        f"<p class='small'>{escape(asi['source'])}</p>",
        "<table><tr><th>risk</th><th>verdict</th><th>controls</th><th>only partly addressed by a "
        "control plane</th></tr>",
    ]
    for row in asi["rows"]:
        out.append(
            f"<tr><td><b>{row['id']}</b> {escape(row.get('title', ''))}</td>"
            f"<td>{_badge(row['verdict'])}</td><td>{escape(', '.join(row['controls']))}</td>"
            f"<td class='small'>{escape(row.get('partial', ''))}</td></tr>"
        )
    out.append("</table>")
    for key, heading in (
        ("maestro", "CSA MAESTRO"),
        ("nist_ai_rmf", "NIST AI RMF 1.0"),
        ("nist_csf_2", "NIST CSF 2.0"),
        ("sp800_53", "NIST SP 800-53 Rev. 5"),
    ):
        fw = report["frameworks"][key]
        out += [
            f"<h2>{heading}</h2><p class='small'>{escape(fw['source'])}</p>",
            "<table><tr><th>id</th><th>verdict</th><th>controls</th></tr>",
        ]
        for row in fw["rows"]:
            label = (
                f"{row['id']} <span class='small'>({escape(row['layer'])})</span>"
                if key == "maestro"
                else escape(row["id"])
            )
            out.append(
                f"<tr><td>{label}</td><td>{_badge(row['verdict'])}</td>"
                f"<td>{escape(', '.join(row['controls']))}</td></tr>"
            )
        out.append("</table>")
    thresholds = ", ".join(f"{k}={v}" for k, v in report["thresholds"].items())
    out += [
        "<h2>Scope and configuration</h2>",
        f"<p>{escape(report['out_of_scope'])}</p>",
        f"<p class='small'>thresholds: {escape(thresholds)}</p>",
        "</main></body></html>",
    ]
    return "\n".join(out)


RENDERERS = {"json": to_json, "md": to_markdown, "html": to_html}


def render(report: dict[str, Any], fmt: str) -> str:
    try:
        return RENDERERS[fmt](report)
    except KeyError:
        from warden.errors import InvalidParameterError

        raise InvalidParameterError(
            f"unknown report format `{fmt}`: use html, md or json"
        ) from None
