"""``ragrev report``: one self-contained HTML file to read after a migration.

Per store: its version and what is pending or half-applied; the run history
from the store's own log (who, when, how long, outcome, error); each step's
rows, time and rate; the gates (``expect_count``, ``check_recall``,
``validate_all``, ``check_sequence``...) with the numbers they recorded; chat
archives with their manifests; and a timeline chart of the last runs.

The chart is drawn by Plotly (the ``report`` extra), whose JavaScript is
inlined in the file: the report opens with no network. Everything read
comes from the stores (:func:`collect`); :func:`render` only formats it.
"""
from __future__ import annotations

import datetime as _dt
import html
import json

from ragrev.errors import BadInput

#: runs per store in the timeline chart
TIMELINE_RUNS = 50
GATES = ("expect_count", "check_recall", "validate_all", "check_sequence", "check")


def _time(value) -> _dt.datetime | None:
    if not value:
        return None
    try:
        t = _dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)


def _seconds(start, end) -> float | None:
    a, b = _time(start), _time(end)
    return (b - a).total_seconds() if a and b else None


def collect(config, store_names=None) -> dict:
    """What the report shows, read from the stores (JSON-ready)."""
    from ragrev import commands
    from ragrev.runner import Runner

    current = {r["store"]: r for r in commands.current(config, store_names)}
    stores = []
    with Runner(config, store_names=store_names) as runner:
        for name in runner.store_names:
            store = commands._connect(runner, name)
            records = store.log_records()
            steps: dict[str, list] = {}
            for r in records:
                if r.get("type") == "step":
                    steps.setdefault(r.get("run_id"), []).append(r)
            runs = []
            for r in records:
                if r.get("type") != "run":
                    continue
                run_steps = []
                for s in sorted(steps.get(r["id"], []), key=lambda s: s.get("step_index", 0)):
                    secs = _seconds(s.get("started"), s.get("finished"))
                    rows = s.get("rows_done")
                    captured = s.get("captured") or {}
                    run_steps.append({
                        "index": (s.get("step_index") or 0) + 1, "description": s.get("description"),
                        "outcome": s.get("outcome"), "rows": rows, "seconds": secs,
                        "rows_per_s": round(rows / secs, 1) if rows and secs else None,
                        "gate": str(s.get("description") or "").split("(")[0].rsplit(".", 1)[-1] in GATES,
                        "numbers": {k: v for k, v in captured.items() if isinstance(v, (int, float, str, bool))},
                        "archive": captured.get("to") if captured.get("format") else None,
                    })
                runs.append({
                    "revision": r.get("revision"), "direction": r.get("direction"), "outcome": r.get("outcome"),
                    "started": r.get("started"), "finished": r.get("finished"),
                    "seconds": _seconds(r.get("started"), r.get("finished")),
                    "who": f"{r.get('username') or '?'}@{r.get('hostname') or '?'}",
                    "git_commit": r.get("git_commit"), "error": r.get("error"), "steps": run_steps,
                })
            row = current.get(name, {})
            stores.append({
                "store": name, "kind": store.kind, "url": store.config.display_url, "heads": row.get("heads", []),
                "at_head": row.get("at_head"), "pending": row.get("pending", []), "notes": row.get("notes", []),
                "runs": runs, "archives": _archives(config, runs),
            })
    return {"generated": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "project": str(config.directory), "stores": stores}


def _archives(config, runs) -> list[dict]:
    """The manifests under each archive root a step wrote to (readable ones)."""
    from ragrev.chats.archive import MANIFEST_SUFFIX, open_root

    out, seen = [], set()
    for run in runs:
        for s in run["steps"]:
            url = s["archive"]
            if not url or url in seen:
                continue
            seen.add(url)
            try:
                root = open_root(url, config.directory)
                paths = sorted(root.fs.glob(f"{root.path.rstrip('/')}/**/*{MANIFEST_SUFFIX}"))
            except Exception as e:  # an unreachable bucket: say so in the report
                out.append({"root": url, "error": str(e), "manifests": []})
                continue
            manifests = []
            for p in paths:
                try:
                    m = json.loads(root.fs.cat_file(p))
                except Exception as e:
                    manifests.append({"file": p, "error": str(e)})
                    continue
                manifests.append({"file": str(p)[len(root.path.rstrip('/')) + 1:], "messages": m.get("messages"),
                                  "sessions": len(m.get("sessions") or []), "bytes": m.get("bytes"),
                                  "sha256": m.get("sha256"), "format": m.get("format")})
            out.append({"root": url, "manifests": manifests})
    return out


# --- HTML ----------------------------------------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}h3{font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px}td,th{border:1px solid #ddd;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}.num{text-align:right;font-variant-numeric:tabular-nums}
.done{color:#17702e}.failed{color:#b3261e;font-weight:600}.running{color:#a15c00}.reverted{color:#666}
code{font-size:12px}.note{color:#a15c00}
"""


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _num(value, fmt="{:,}") -> str:
    if value is None:
        return ""
    return fmt.format(value)


def timeline(data: dict):
    """The Plotly figure of the last runs of every store (None without runs)."""
    import plotly.graph_objects as go

    fig = go.Figure()
    colors = {"done": "#2e7d32", "failed": "#c62828", "running": "#ef6c00", "reverted": "#757575"}
    any_run = False
    for outcome, color in colors.items():
        ys, bases, widths, texts = [], [], [], []
        for s in data["stores"]:
            for r in s["runs"][-TIMELINE_RUNS:]:
                start = _time(r["started"])
                if r["outcome"] != outcome or start is None:
                    continue
                end = _time(r["finished"]) or start
                ys.append(s["store"])
                bases.append(start.isoformat())
                widths.append(max((end - start).total_seconds() * 1000, 1000))
                texts.append(f"{r['direction']} {r['revision']}")
        if ys:
            any_run = True
            fig.add_trace(go.Bar(y=ys, base=bases, x=widths, orientation="h", name=outcome, marker_color=color,
                                 text=texts, hovertemplate="%{text}<br>%{base} (%{x:,.0f} ms)<extra></extra>"))
    if not any_run:
        return None
    fig.update_layout(barmode="overlay", height=160 + 40 * len(data["stores"]), margin=dict(l=80, r=20, t=30, b=40),
                      xaxis=dict(type="date", title="time (UTC)"), title="Runs")
    return fig


def render(data: dict) -> str:
    """The report as one HTML document (Plotly's JavaScript inlined)."""
    try:
        fig = timeline(data)
    except ImportError:
        raise BadInput("ragrev report draws its chart with plotly: pip install 'ragrev[report]'") from None
    chart = fig.to_html(full_html=False, include_plotlyjs=True, div_id="timeline",
                        config={"displaylogo": False, "responsive": True}) if fig is not None else \
        '<p id="timeline">No runs yet.</p>'
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>ragrev report: {_e(data['project'])}</title><style>{_CSS}</style></head><body>",
           f"<h1>ragrev report</h1><p>Project <code>{_e(data['project'])}</code> · generated {_e(data['generated'])}</p>",
           '<h2>Stores</h2><table id="stores"><tr><th>Store</th><th>Kind</th><th>Version</th><th>Pending</th>'
           "<th>Notes</th></tr>"]
    for s in data["stores"]:
        state = "at head" if s["at_head"] else f"{len(s['pending'])} pending"
        out.append(f"<tr><td>{_e(s['store'])}</td><td>{_e(s['kind'])}</td>"
                   f"<td><code>{_e(', '.join(s['heads']) or '<base>')}</code> ({state})</td>"
                   f"<td>{_e(', '.join(s['pending']))}</td>"
                   f"<td class=note>{'<br>'.join(_e(n) for n in s['notes'])}</td></tr>")
    out.append("</table>")
    out.append(f'<h2>Timeline</h2><div id="chart">{chart}</div>')
    for s in data["stores"]:
        sid = _e(s["store"])
        out.append(f'<h2 id="store-{sid}">{sid} <small>({_e(s["kind"])}, {_e(s["url"])})</small></h2>')
        out.append(f'<h3>Runs</h3><table class="runs" data-store="{sid}"><tr><th>Started</th><th>Revision</th>'
                   "<th>Direction</th><th>Outcome</th><th>Seconds</th><th>Who</th><th>Commit</th><th>Error</th></tr>")
        for r in reversed(s["runs"]):
            out.append(f"<tr><td>{_e(r['started'])}</td><td><code>{_e(r['revision'])}</code></td>"
                       f"<td>{_e(r['direction'])}</td><td class=\"{_e(r['outcome'])}\">{_e(r['outcome'])}</td>"
                       f"<td class=num>{_num(r['seconds'], '{:,.2f}')}</td><td>{_e(r['who'])}</td>"
                       f"<td><code>{_e((r['git_commit'] or '')[:10])}</code></td><td>{_e(r['error'])}</td></tr>")
        out.append("</table>")
        out.append(f'<h3>Steps</h3><table class="steps" data-store="{sid}"><tr><th>Revision</th><th>#</th>'
                   "<th>Step</th><th>Outcome</th><th>Rows</th><th>Seconds</th><th>Rows/s</th></tr>")
        gates = []
        for r in reversed(s["runs"]):
            for st in r["steps"]:
                out.append(f"<tr><td><code>{_e(r['revision'])}</code> {_e(r['direction'])}</td><td>{st['index']}</td>"
                           f"<td><code>{_e(st['description'])}</code></td><td class=\"{_e(st['outcome'])}\">"
                           f"{_e(st['outcome'])}</td><td class=num>{_num(st['rows'])}</td>"
                           f"<td class=num>{_num(st['seconds'], '{:,.2f}')}</td>"
                           f"<td class=num>{_num(st['rows_per_s'], '{:,.0f}')}</td></tr>")
                if st["gate"]:
                    gates.append((r, st))
        out.append("</table>")
        out.append(f'<h3>Gates</h3><table class="gates" data-store="{sid}"><tr><th>Revision</th><th>Check</th>'
                   "<th>Outcome</th><th>Numbers</th></tr>")
        for r, st in gates:
            numbers = ", ".join(f"{k} = {v}" for k, v in st["numbers"].items()) or (
                f"rows = {st['rows']:,}" if st["rows"] else "")
            out.append(f"<tr><td><code>{_e(r['revision'])}</code></td><td><code>{_e(st['description'])}</code></td>"
                       f"<td class=\"{_e(st['outcome'])}\">{_e(st['outcome'])}</td><td>{_e(numbers)}</td></tr>")
        out.append("</table>")
        if s["archives"]:
            out.append(f'<h3>Archives</h3><table class="archives" data-store="{sid}"><tr><th>Root</th><th>File</th>'
                       "<th>Messages</th><th>Sessions</th><th>Bytes</th><th>SHA-256</th></tr>")
            for a in s["archives"]:
                if a.get("error"):
                    out.append(f"<tr><td>{_e(a['root'])}</td><td colspan=5 class=failed>{_e(a['error'])}</td></tr>")
                for m in a["manifests"]:
                    out.append(f"<tr><td>{_e(a['root'])}</td><td><code>{_e(m['file'])}</code></td>"
                               f"<td class=num>{_num(m.get('messages'))}</td><td class=num>{_num(m.get('sessions'))}</td>"
                               f"<td class=num>{_num(m.get('bytes'))}</td><td><code>{_e((m.get('sha256') or '')[:16])}</code></td></tr>")
            out.append("</table>")
    out.append("</body></html>")
    return "\n".join(out)
